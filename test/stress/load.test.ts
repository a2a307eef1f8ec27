// Load: 1,000 concurrent clients (10 processes x 100 DaemonClients x 20 pings) all answered, and
// 10,000 connections opened and dropped; afterwards the daemon's fd count is back at its baseline.
// Measured from outside, through /proc/<daemon pid>/fd and VmRSS.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DaemonClient } from '../../src/client/client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { encodeFrame } from '../../src/wire/codec.js';
import { tempHome, type TempHome } from '../helpers/env.js';
import { fdCount, rssKb, settleAtMost, startDaemon } from './helpers.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ping-worker.js');
/** fds the daemon may legitimately hold beyond its baseline afterwards (none expected; a timer's fd, say). */
const FD_SLACK = 3;

let h: TempHome;
let pid: number;
let baseline: number;

before(async () => {
  h = tempHome();
  pid = await startDaemon(h);
  // One client in and out first, so lazily opened fds (log files, the thread pool's) are in the baseline.
  const warm = new DaemonClient({ env: h.env });
  await warm.ping();
  await warm.listServices();
  warm.close();
  await new Promise((r) => setTimeout(r, 300));
  baseline = fdCount(pid);
});
after(async () => {
  await h.cleanup();
});

interface WorkerResult {
  answered: number;
  failed: number;
  ms: number;
  maxMs: number;
  errors: string[];
}

function startWorker(
  clients: number,
  pings: number,
): { ready: Promise<void>; go(): void; result: Promise<WorkerResult> } {
  const child = spawn(process.execPath, [WORKER, String(clients), String(pings)], {
    env: h.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let readyResolve!: () => void;
  const ready = new Promise<void>((resolve) => (readyResolve = resolve));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.includes('ready\n')) readyResolve();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const result = new Promise<WorkerResult>((resolve, reject) => {
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) reject(new Error(`worker exited ${code}: ${out}\n${err}`));
      else resolve(JSON.parse(line) as WorkerResult);
    });
  });
  result.catch(() => readyResolve());
  return { ready, go: () => child.stdin.end('go\n'), result };
}

describe('load', () => {
  test('1,000 concurrent clients (10 processes x 100 clients x 20 pings) are all answered; fds return to baseline', async (t) => {
    const PROCS = 10;
    const CLIENTS = 100;
    const PINGS = 20;
    const rssBefore = rssKb(pid);
    const workers = Array.from({ length: PROCS }, () => startWorker(CLIENTS, PINGS));
    await Promise.all(workers.map((w) => w.ready));
    // Every client holds its connection now: the daemon sees them all at once.
    const peak = fdCount(pid);
    const started = Date.now();
    for (const w of workers) w.go();
    const results = await Promise.all(workers.map((w) => w.result));
    const ms = Date.now() - started;
    const answered = results.reduce((n, r) => n + r.answered, 0);
    const failed = results.reduce((n, r) => n + r.failed, 0);
    const maxMs = Math.max(...results.map((r) => r.maxMs));
    assert.equal(failed, 0, JSON.stringify(results.flatMap((r) => r.errors)));
    assert.equal(answered, PROCS * CLIENTS * PINGS);
    assert.ok(
      peak >= baseline + PROCS * CLIENTS,
      `all ${PROCS * CLIENTS} connections were open at once (fds ${baseline} -> ${peak})`,
    );

    const afterFds = await settleAtMost(() => fdCount(pid), baseline + FD_SLACK);
    const rssAfter = rssKb(pid);
    t.diagnostic(
      `1000 clients: ${answered} pings answered in ${ms} ms (slowest ${maxMs} ms); daemon fds ${baseline} -> ${peak} (1000 open) -> ${afterFds}; RSS ${Math.round(rssBefore / 1024)} -> ${Math.round(rssAfter / 1024)} MiB`,
    );
    assert.ok(afterFds <= baseline + FD_SLACK, `fds back at baseline ${baseline}: ${afterFds}`);
  });

  test('10,000 connections opened and dropped (some mid-handshake, some mid-frame): fds back at baseline', async (t) => {
    const TOTAL = 10_000;
    const PARALLEL = 100;
    const rssBefore = rssKb(pid);
    const start = baseline;
    const hello = encodeFrame(
      { id: 0, type: 'Hello', protocol: PROTOCOL_VERSION, client: 'drop-test', token: null },
      1 << 20,
    );
    const partial = Buffer.concat([
      encodeFrame({ id: 1, type: 'Ping' }, 1 << 20),
      Buffer.from([200, 0, 0, 0, 1, 2, 3]),
    ]);
    let refused = 0;
    const codes = new Map<string, number>();
    const one = (i: number): Promise<void> =>
      new Promise((resolve) => {
        const socket = net.createConnection({ path: h.paths.socket.address });
        socket.on('error', (err: NodeJS.ErrnoException) => {
          if (!socket.connecting) return; // a reset after connecting is the daemon's side closing: fine
          refused++;
          codes.set(err.code ?? '?', (codes.get(err.code ?? '?') ?? 0) + 1);
          resolve();
        });
        socket.on('close', () => resolve());
        socket.on('connect', () => {
          switch (i % 3) {
            case 0:
              socket.destroy();
              break;
            case 1:
              socket.write(hello, () => socket.destroy());
              break;
            default:
              socket.write(partial, () => socket.destroy());
          }
        });
      });
    const began = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < TOTAL) await one(next++);
      }),
    );
    const ms = Date.now() - began;
    assert.equal(refused, 0, `no connection was refused: ${JSON.stringify([...codes])}`);
    const afterFds = await settleAtMost(() => fdCount(pid), start + FD_SLACK);
    const rssAfter = rssKb(pid);
    const check = new DaemonClient({ env: h.env });
    try {
      assert.equal((await check.ping()).pid, pid);
    } finally {
      check.close();
    }
    t.diagnostic(
      `10000 connections dropped in ${ms} ms; daemon fds ${start} -> ${afterFds}; RSS ${Math.round(rssBefore / 1024)} -> ${Math.round(rssAfter / 1024)} MiB`,
    );
    assert.ok(afterFds <= start + FD_SLACK, `fds back at baseline ${start}: ${afterFds}`);
    // Generous: 10,000 dropped connections must not leave per-connection state behind.
    assert.ok(rssAfter - rssBefore < 64 * 1024, `RSS grew by ${rssAfter - rssBefore} KiB`);
  });
});
