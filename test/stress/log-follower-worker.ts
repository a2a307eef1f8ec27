// A process holding `count` log followers of one service (not a test file itself), each on its own
// connection. Prints "ready" once every follower has received lines; on "report" from stdin prints one
// JSON line with the lines and bytes received and the errors seen. A test SIGSTOPs some of these
// processes to make paused followers: their sockets fill, and they never read again until resumed.
//
// argv: service count. The daemon is found through the environment (HOME / XDG_*).

import { DaemonClient } from '../../src/client/client.js';

const service = process.argv[2] ?? 'flood';
const count = Number(process.argv[3] ?? 50);
let lines = 0;
let bytes = 0;
const errors = new Set<string>();
let started = 0;
let announced = false;

const clients = Array.from({ length: count }, () => new DaemonClient({ timeoutMs: 60_000, connectTimeoutMs: 30_000 }));
for (const c of clients) {
  void (async () => {
    let first = true;
    try {
      for await (const batch of c.readServiceLogBatches(service, { lines: 10, follow: true })) {
        bytes += batch.data.length;
        for (let i = 2; i < batch.runs.length; i += 3) lines += batch.runs[i] as number;
        if (first) {
          first = false;
          if (++started === count && !announced) {
            announced = true;
            process.stdout.write('ready\n');
          }
        }
      }
    } catch (err) {
      errors.add(err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}` : String(err));
    }
  })();
}

process.stdin.on('data', (d: Buffer) => {
  if (d.toString().includes('report'))
    process.stdout.write(`${JSON.stringify({ lines, bytes, errors: [...errors].slice(0, 5) })}\n`);
});
