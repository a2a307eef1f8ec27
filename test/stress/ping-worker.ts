// One load-generating process of the 1,000-client test (not a test file itself): opens `clients`
// DaemonClients (each its own connection), reports "ready" once every one has connected and pinged,
// waits for "go" on stdin, then has each send `pings` more pings (all clients at once, each client's
// pings one after the other), and prints one JSON line with the counts and latencies.
//
// argv: clients pings. The daemon is found through the environment (HOME / XDG_*), as the CLI finds it.

import { DaemonClient } from '../../src/client/client.js';

const clients = Number(process.argv[2] ?? 100);
const pings = Number(process.argv[3] ?? 20);

const all = Array.from({ length: clients }, () => new DaemonClient({ timeoutMs: 60_000, connectTimeoutMs: 30_000 }));
let failed = 0;
const errors = new Set<string>();
const note = (err: unknown): void => {
  failed++;
  errors.add(err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}` : String(err));
};

await Promise.all(all.map((c) => c.ping().catch(note)));
process.stdout.write('ready\n');
await new Promise<void>((resolve) => {
  process.stdin.on('data', (d: Buffer) => {
    if (d.toString().includes('go')) resolve();
  });
});

const started = Date.now();
let answered = 0;
let maxMs = 0;
await Promise.all(
  all.map(async (c) => {
    for (let i = 0; i < pings; i++) {
      const t = Date.now();
      try {
        await c.ping();
        answered++;
        maxMs = Math.max(maxMs, Date.now() - t);
      } catch (err) {
        note(err);
      }
    }
  }),
);
const ms = Date.now() - started;
process.stdout.write(JSON.stringify({ answered, failed, ms, maxMs, errors: [...errors].slice(0, 5) }) + '\n');
for (const c of all) c.close();
// Let the closes reach the daemon before exiting.
setTimeout(() => process.exit(0), 100);
