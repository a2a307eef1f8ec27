// `npm run bench`: one table of the daemon's figures, each against a baseline measured in the same run.
//
//   node dist/bench/bench.js [--quick] [--json] [--compare]
//
// --quick   small counts: a smoke run that checks every section works (seconds, not minutes)
// --json    machine-readable output (rows, machine, options) instead of the table
// --compare also run the same work on PM2 (installed on demand into a temp folder) and supervisord
//           (when `supervisord` is on PATH)
//
// Everything runs with a fresh temporary HOME and is cleaned up at the end, on error and on Ctrl-C.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { benchCli } from './cli.js';
import { comparePm2 } from './compare-pm2.js';
import { compareSupervisord } from './compare-supervisord.js';
import { benchDigest } from './digest.js';
import { startEchoServer } from './echo-baseline.js';
import { Harness, ROOT } from './harness.js';
import { benchLogs } from './logs.js';
import { benchPing } from './ping.js';
import { loadAverage, rssBytes } from './proc.js';
import { cpuRow, IdleNode, rssRow } from './resources.js';
import { benchRestart } from './restart.js';
import { benchPrlimit } from './rlimits.js';
import { directSpawnMs, listRoundTrip, Sleepers, startRows } from './scale.js';
import { sleep } from './stats.js';
import { jsonRows, renderTable, type Row } from './table.js';

export interface Counts {
  pingSamples: number;
  pingRounds: number;
  pipelined: number;
  window: number;
  pipelinedRounds: number;
  cliRuns: number;
  restartSamples: number;
  /** Service counts at which `services` is timed; the last is how many are started. */
  listAt: number[];
  listSamples: number;
  resourceServices: number;
  cpuSeconds: number;
  floodLines: number;
  floodRounds: number;
  /** Processes each compared supervisor runs for its list figure. */
  compareServices: number;
  /** Dependency files of the plugin whose approved-files check is timed, and how often. */
  digestFiles: number;
  digestSamples: number;
}

const FULL: Counts = {
  pingSamples: 2000,
  pingRounds: 10,
  pipelined: 50_000,
  window: 256,
  pipelinedRounds: 6,
  cliRuns: 21,
  restartSamples: 15,
  listAt: [200, 1000],
  listSamples: 31,
  resourceServices: 100,
  cpuSeconds: 10,
  floodLines: 4_000_000,
  floodRounds: 3,
  compareServices: 200,
  digestFiles: 2000,
  digestSamples: 1000,
};

const QUICK: Counts = {
  pingSamples: 300,
  pingRounds: 4,
  pipelined: 5000,
  window: 256,
  pipelinedRounds: 2,
  cliRuns: 4,
  restartSamples: 2,
  listAt: [20, 50],
  listSamples: 5,
  resourceServices: 10,
  cpuSeconds: 2,
  floodLines: 200_000,
  floodRounds: 1,
  compareServices: 10,
  digestFiles: 200,
  digestSamples: 100,
};

export function machine(): { cpus: string; cpu: string; ram: string; node: string; kernel: string } {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {
    // not Linux
  }
  return {
    cpus: String(os.availableParallelism?.() ?? os.cpus().length),
    cpu,
    ram: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

/** The commit measured, with "+changes" when the tree differs from it; "unknown" outside a git checkout. */
function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain'], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() !== '';
    return dirty ? `${head}+changes` : head;
  } catch {
    return 'unknown';
  }
}

function progress(json: boolean, text: string): void {
  // Progress goes to stderr, so --json output on stdout stays parseable.
  if (!json || process.stderr.isTTY) process.stderr.write(`bench: ${text}\n`);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  for (const a of argv) {
    if (!['--quick', '--json', '--compare', '--help', '-h'].includes(a)) {
      process.stderr.write(`bench: unknown option ${a}\n`);
      return 2;
    }
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write('usage: npm run bench -- [--quick] [--json] [--compare]\n');
    return 0;
  }
  const quick = argv.includes('--quick');
  const json = argv.includes('--json');
  const compare = argv.includes('--compare');
  const counts = quick ? QUICK : FULL;
  const say = (t: string): void => progress(json, t);

  const h = new Harness();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`bench: ${signal}: cleaning up\n`);
    void h.cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const rows: Row[] = [];
  const loadBefore = loadAverage();
  const started = Date.now();
  try {
    say(`HOME=${h.home}; load average ${loadBefore}`);
    const idle = await IdleNode.start(h);
    const echoSocket = await startEchoServer(h);
    const pid = await h.startDaemon();
    say(`daemon pid ${pid}`);
    await sleep(2000);
    rows.push(rssRow(pid, idle, 'idle (no services)', 45));

    // Memory and CPU first, while the daemon has done nothing but start its services.
    say(`${counts.resourceServices} services: memory and CPU`);
    const client = h.client();
    const sleepers = new Sleepers(client);
    await sleepers.startUpTo(counts.resourceServices);
    await sleep(1000);
    rows.push(rssRow(pid, idle, `${counts.resourceServices} services`, 60));
    rows.push(await cpuRow(pid, idle, counts.resourceServices, counts.cpuSeconds));

    say('ping latency and pipelined throughput');
    const ping = await benchPing(client, echoSocket, {
      samples: counts.pingSamples,
      rounds: counts.pingRounds,
      pipelined: counts.pipelined,
      window: counts.window,
      pipelinedRounds: counts.pipelinedRounds,
    });
    rows.push(...ping.rows);

    say('SudoRun approved-files check');
    rows.push(
      ...(await benchDigest(0, counts.digestSamples)),
      ...(await benchDigest(counts.digestFiles, counts.digestSamples)),
    );

    say('CLI cold start');
    const cli = await benchCli(h, counts.cliRuns);
    rows.push(...cli.rows);

    say('crash-to-restart');
    const restart = await benchRestart(h, client, counts.restartSamples);
    rows.push(...restart.rows);

    say('plugin process limit (prlimit) at spawn');
    rows.push(...(await benchPrlimit(h, counts.restartSamples)));

    say('log flood');
    rows.push(...(await benchLogs(h, client, counts.floodLines, counts.floodRounds)));

    const listRows: Row[] = [];
    for (const n of counts.listAt) {
      say(`starting up to ${n} services`);
      await sleepers.startUpTo(n);
      listRows.push(await listRoundTrip(client, echoSocket, counts.listSamples, n));
    }
    const direct = await directSpawnMs(h, sleepers.count);
    rows.push(...startRows(sleepers, direct), ...listRows);
    rows.push(rssRow(pid, idle, `${sleepers.count} services, after the whole run`, null));

    say('stopping the daemon');
    client.close();
    await h.stopDaemon();

    if (compare) {
      say('PM2');
      const options = { echoSocket, floors: restart.floors, idleNodeMB: rssBytes(idle.pid) / 2 ** 20, counts, say };
      rows.push(...(await comparePm2(h, options)));
      say('supervisord');
      rows.push(...(await compareSupervisord(h, options)));
    }
  } finally {
    say('cleaning up');
    await h.cleanup();
  }

  // One order whatever the order of measuring: the daemon's groups, then the compared supervisors.
  const GROUPS = ['IPC', 'CLI', 'Restart', 'Logs', 'Resources', 'Scale'];
  const rank = (r: Row): number => (GROUPS.includes(r.group) ? GROUPS.indexOf(r.group) : GROUPS.length);
  rows.sort((a, b) => rank(a) - rank(b));

  const info = {
    ...machine(),
    load_before: loadBefore,
    load_after: loadAverage(),
    duration_s: ((Date.now() - started) / 1000).toFixed(0),
    mode: quick ? 'quick' : 'full',
    commit: gitCommit(),
  };
  if (json) {
    process.stdout.write(`${JSON.stringify({ machine: info, counts, rows: jsonRows(rows) }, null, 2)}\n`);
  } else {
    process.stdout.write(`\n${renderTable(rows)}\n\n`);
    process.stdout.write(`machine: ${info.cpus} x ${info.cpu}, ${info.ram}, Node ${info.node}, ${info.kernel}\n`);
    process.stdout.write(
      `load average before ${info.load_before}, after ${info.load_after}; ${info.duration_s} s; ${info.mode} run of ${info.commit}\n`,
    );
  }
  // A missed target is a finding, not a failure of the benchmark.
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
