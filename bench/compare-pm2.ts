// `--compare`: the same work on PM2, installed on demand into a folder of the benchmark's temporary
// HOME (`npm install --prefix <tmp> pm2`), with PM2_HOME there too, so the user's own PM2 is never
// touched. The PM2 API work runs in pm2-worker.js; the CLI figure (`pm2 ping` wall time against
// `node -e 0`, alternating) is taken here. PM2's daemon is killed at the end (and on any error).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Counts } from './bench.js';
import { nodeFloorMs } from './cli.js';
import type { Harness } from './harness.js';
import type { Pm2Job } from './pm2-worker.js';
import type { StampKind } from './restart.js';
import { alternate, median } from './stats.js';
import type { Row } from './table.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pm2-worker.js');

export interface CompareOptions {
  echoSocket: string;
  floors: Record<StampKind, number>;
  idleNodeMB: number;
  counts: Counts;
  say: (text: string) => void;
}

function skipped(group: string, why: string): Row[] {
  return [
    {
      group,
      metric: `not measured: ${why}`,
      value: NaN,
      unit: 'ms',
      baselineLabel: null,
      baseline: null,
      target: null,
    },
  ];
}

export async function comparePm2(h: Harness, opts: CompareOptions): Promise<Row[]> {
  const dir = path.join(h.home, 'pm2-install');
  const pm2Home = path.join(h.home, '.pm2');
  const env = { ...h.env, PM2_HOME: pm2Home };
  const bin = path.join(dir, 'node_modules', 'pm2', 'bin', 'pm2');
  fs.mkdirSync(dir, { recursive: true });
  opts.say('installing PM2 into a temporary folder');
  // npm with the user's environment (its cache), never with the benchmark's HOME.
  const npmCli = process.env['npm_execpath'];
  const npm =
    npmCli !== undefined && npmCli.endsWith('.js')
      ? { file: process.execPath, args: [npmCli] }
      : { file: 'npm', args: [] };
  const install = await h
    .run(npm.file, [...npm.args, 'install', '--prefix', dir, 'pm2', '--no-audit', '--no-fund', '--loglevel=error'], {
      timeoutMs: 300_000,
      env: process.env,
    })
    .catch((err: unknown) => ({
      code: -1,
      stdout: '',
      stderr: err instanceof Error ? err.message : String(err),
      ms: 0,
    }));
  if (install.code !== 0 || !fs.existsSync(bin))
    return skipped('PM2', `npm install pm2 failed: ${install.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);

  h.onCleanup(async () => {
    await h.run(process.execPath, [bin, 'kill'], { env, timeoutMs: 60_000 }).catch(() => undefined);
  });
  const job: Pm2Job = {
    pm2Dir: dir,
    scratch: h.scratch,
    echoSocket: opts.echoSocket,
    floors: opts.floors,
    idleNodeMB: opts.idleNodeMB,
    pingSamples: opts.counts.pingSamples,
    pingRounds: opts.counts.pingRounds,
    restartSamples: opts.counts.restartSamples,
    services: opts.counts.compareServices,
    listSamples: opts.counts.listSamples,
    out: path.join(h.scratch, 'pm2-result.json'),
  };
  const jobFile = path.join(h.scratch, 'pm2-job.json');
  fs.writeFileSync(jobFile, JSON.stringify(job));
  opts.say('PM2: RPC, restarts, list, memory');
  const run = await h.run(process.execPath, [WORKER, jobFile], { env, timeoutMs: 600_000 });
  if (run.code !== 0 || !fs.existsSync(job.out))
    return skipped('PM2', `worker failed: ${run.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  const { rows } = JSON.parse(fs.readFileSync(job.out, 'utf8')) as { rows: Row[] };

  opts.say('PM2: `pm2 ping` wall time');
  const pm2Ping = async (): Promise<number> => {
    const r = await h.run(process.execPath, [bin, 'ping'], { env, capture: false });
    if (r.code !== 0) throw new Error(`pm2 ping exited ${r.code}`);
    return r.ms;
  };
  await pm2Ping();
  const [pingMs, floorMs] = await alternate<number>(opts.counts.cliRuns, [pm2Ping, () => nodeFloorMs(h)]);
  const group = rows[0]?.group ?? 'PM2';
  rows.splice(2, 0, {
    group,
    metric: '`pm2 ping` wall time',
    value: median(pingMs ?? []),
    unit: 'ms',
    baselineLabel: '`node -e 0`',
    baseline: median(floorMs ?? []),
    target: null,
    note: `median of ${opts.counts.cliRuns}`,
  });
  await h.run(process.execPath, [bin, 'kill'], { env, timeoutMs: 60_000 }).catch(() => undefined);
  return rows;
}
