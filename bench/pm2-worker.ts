// The PM2 side of `--compare`, run in its own process (PM2's module keeps global state and prints to
// stdout): `node dist/bench/pm2-worker.js <job.json>`. PM2_HOME and HOME point into the benchmark's
// temporary HOME. The job names the PM2 install, the echo socket, the floors and the counts; the
// rows are written to the job's `out` file.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { EchoClient, echoFrame } from './echo-baseline.js';
import { rssBytes } from './proc.js';
import { killAndTimeRestart, readStamps, stampCommand, waitForStamp, type StampKind } from './restart.js';
import { alternate, median, nowNs, quantile, sleep, timed, timeEach, waitUntil } from './stats.js';
import type { Row } from './table.js';

export interface Pm2Job {
  pm2Dir: string;
  scratch: string;
  echoSocket: string;
  floors: Record<StampKind, number>;
  idleNodeMB: number;
  pingSamples: number;
  pingRounds: number;
  restartSamples: number;
  services: number;
  listSamples: number;
  out: string;
}

interface Pm2Api {
  connect(cb: (err: Error | null) => void): void;
  disconnect(): void;
  start(opts: object, cb: (err: Error | null) => void): void;
  list(cb: (err: Error | null, list: unknown[]) => void): void;
  Client: { executeRemote(method: string, arg: object, cb: (err: Error | null, res: unknown) => void): void };
}

function call<T>(fn: (cb: (err: Error | null, res?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res as T))));
}

async function main(): Promise<void> {
  const job = JSON.parse(fs.readFileSync(process.argv[2] as string, 'utf8')) as Pm2Job;
  const require = createRequire(path.join(job.pm2Dir, 'package.json'));
  const pm2 = require(path.join(job.pm2Dir, 'node_modules', 'pm2')) as Pm2Api;
  const version = (require(path.join(job.pm2Dir, 'node_modules', 'pm2', 'package.json')) as { version: string })
    .version;
  const group = `PM2 ${version}`;
  const rows: Row[] = [];
  await call<void>((cb) => pm2.connect(cb));
  const pidFile = path.join(process.env['PM2_HOME'] as string, 'pm2.pid');
  await waitUntil(() => fs.existsSync(pidFile), 10_000, 'the PM2 daemon pid file');
  const godPid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  await sleep(2000);
  const rssIdle = rssBytes(godPid) / 2 ** 20;

  // RPC ping against the raw echo floor, alternating.
  const echo = await EchoClient.connect(job.echoSocket);
  const small = echoFrame(64);
  const ping = (n: number): Promise<number[]> =>
    timeEach(n, () => call((cb) => pm2.Client.executeRemote('ping', {}, cb)));
  const echoes = (frame: Buffer, n: number): Promise<number[]> => timeEach(n, () => echo.roundTrip(frame));
  await ping(200);
  await echoes(small, 200);
  const [pm2Lat, echoLat] = await alternate<number[]>(job.pingRounds, [
    () => ping(job.pingSamples),
    () => echoes(small, job.pingSamples),
  ]);
  const p50 = quantile((pm2Lat ?? []).flat(), 0.5);
  const e50 = quantile((echoLat ?? []).flat(), 0.5);
  rows.push({
    group,
    metric: 'RPC ping p50 (Client.executeRemote ping)',
    value: p50,
    unit: 'us',
    baselineLabel: 'raw echo p50',
    baseline: e50,
    target: null,
  });
  rows.push({
    group,
    metric: 'RPC ping p99',
    value: quantile((pm2Lat ?? []).flat(), 0.99),
    unit: 'us',
    baselineLabel: 'raw echo p99',
    baseline: quantile((echoLat ?? []).flat(), 0.99),
    target: null,
  });

  // Crash-to-restart, the same fixtures as the daemon's.
  for (const kind of ['binary', 'node'] as StampKind[]) {
    const file = path.join(job.scratch, `pm2-stamp-${kind}`);
    const { command, args } = stampCommand(kind, file);
    const opts =
      kind === 'binary'
        ? { script: command, args, interpreter: 'none', name: `crash-${kind}`, max_restarts: 10_000, autorestart: true }
        : { script: args[0], args: args.slice(1), name: `crash-${kind}`, max_restarts: 10_000, autorestart: true };
    await call<void>((cb) => pm2.start(opts, cb));
    await waitForStamp(kind, file, 1);
    await killAndTimeRestart(kind, file);
    const samples: number[] = [];
    for (let i = 0; i < job.restartSamples; i++) samples.push(await killAndTimeRestart(kind, file));
    const m = median(samples);
    rows.push({
      group,
      metric: `crash → restart, ${kind === 'binary' ? 'plain binary' : 'Node.js service'}`,
      value: m,
      unit: 'ms',
      baselineLabel: 'spawn floor',
      baseline: job.floors[kind],
      target: null,
      note: `median of ${samples.length}; ${readStamps(kind, file).length} starts`,
    });
  }

  // N sleepers, then the list round trip.
  const t0 = nowNs();
  for (let i = 0; i < job.services; i++) {
    await call<void>((cb) =>
      pm2.start(
        { script: '/bin/sleep', args: ['100000'], interpreter: 'none', name: `sl-${i}`, autorestart: true },
        cb,
      ),
    );
  }
  const startS = (nowNs() - t0) / 1e9;
  rows.push({
    group,
    metric: `start ${job.services} processes, one pm2.start at a time`,
    value: startS,
    unit: 's',
    baselineLabel: null,
    baseline: null,
    target: null,
  });
  await sleep(1000);
  const list = await call<unknown[]>((cb) => pm2.list(cb));
  const listFrame = echoFrame(Buffer.byteLength(JSON.stringify(list)));
  const [listMs, rawMs] = await alternate<number>(job.listSamples, [
    () => timed(() => call<unknown[]>((cb) => pm2.list(cb))),
    () => timed(() => echo.roundTrip(listFrame)),
  ]);
  rows.push({
    group,
    metric: `pm2.list round trip, ${list.length} processes`,
    value: median(listMs ?? []),
    unit: 'ms',
    baselineLabel: `raw echo of ${Math.round(listFrame.length / 1024)} KiB`,
    baseline: median(rawMs ?? []),
    target: null,
    note: `median of ${job.listSamples}`,
  });
  rows.push({
    group,
    metric: 'God daemon RSS, idle (no apps)',
    value: rssIdle,
    unit: 'MB',
    baselineLabel: 'idle `node`',
    baseline: job.idleNodeMB,
    target: null,
  });
  rows.push({
    group,
    metric: `God daemon RSS, ${list.length} processes`,
    value: rssBytes(godPid) / 2 ** 20,
    unit: 'MB',
    baselineLabel: 'idle `node`',
    baseline: job.idleNodeMB,
    target: null,
  });
  echo.close();
  fs.writeFileSync(job.out, JSON.stringify({ rows, godPid }));
  pm2.disconnect();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`pm2-worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
