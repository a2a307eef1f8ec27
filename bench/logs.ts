// Log capture under a flood: test/fixtures/flood.js prints N numbered lines as fast as its stdout pipe
// takes them. Throughput is the service's stdout bytes over the time between the first and the last
// line's timestamps in its log; every line 1..N must be in the log, in order. The floor: the same flood
// read from its pipe by a bare Node.js loop that appends each chunk to a file (no lines, no timestamps).

import fs from 'node:fs';
import path from 'node:path';
import type { DaemonClient } from '../src/index.js';
import { FIXTURES, type Harness } from './harness.js';
import { alternate, median, nowNs, waitUntil } from './stats.js';
import type { Row } from './table.js';

const FLOOD = path.join(FIXTURES, 'flood.js');
const MiB = 1024 * 1024;

/** Bytes flood.js writes for n lines ("line 1\n" .. "line n\n"). */
export function floodBytes(n: number): number {
  let bytes = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) {
    const hi = Math.min(n, lo * 10 - 1);
    bytes += (hi - lo + 1) * (6 + digits);
  }
  return bytes;
}

function lastBytes(file: string, n: number): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(n, size));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    return buf.toString('latin1');
  } finally {
    fs.closeSync(fd);
  }
}

/** Check the log holds "line 1" .. "line n" from stdout in order; returns lost lines and the time span. */
export function scanFloodLog(file: string, n: number): { lost: number; spanMs: number } {
  const text = fs.readFileSync(file, 'latin1');
  let expect = 1;
  let firstTime: string | null = null;
  let lastTime: string | null = null;
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    // `<ISO time> out line <k>`
    if (text.startsWith(' out line ', at + 24)) {
      const k = Number(text.slice(at + 34, nl));
      if (k === expect) {
        if (expect === 1) firstTime = text.slice(at, at + 24);
        lastTime = text.slice(at, at + 24);
        expect++;
      }
    }
    at = nl + 1;
  }
  const spanMs = firstTime !== null && lastTime !== null ? Date.parse(lastTime) - Date.parse(firstTime) : NaN;
  return { lost: n - (expect - 1), spanMs };
}

async function daemonRound(h: Harness, client: DaemonClient, name: string, n: number): Promise<{ mbps: number; lost: number }> {
  const file = path.join(h.paths.logsDir, `${name}.log`);
  await client.startService(name, {
    command: process.execPath,
    args: [FLOOD, String(n), 'exit'],
    restart_on_failure: false,
    // One file for the whole flood: rotation is not what is measured here.
    log_max_bytes: 1024 * MiB,
  });
  const tail = `out line ${n}\n`;
  await waitUntil(() => lastBytes(file, 256).includes(tail), 180_000, `${name} to log line ${n}`, 10);
  const { lost, spanMs } = scanFloodLog(file, n);
  // Timestamps have 1 ms resolution; a span under a few ms is not a rate.
  const mbps = floodBytes(n) / MiB / (Math.max(spanMs, 1) / 1000);
  fs.rmSync(file, { force: true });
  return { mbps, lost };
}

async function floorRound(h: Harness, n: number): Promise<number> {
  const file = path.join(h.scratch, 'flood-floor.out');
  const fd = fs.openSync(file, 'w');
  try {
    const child = h.spawn(process.execPath, [FLOOD, String(n), 'exit'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let first = 0;
    let bytes = 0;
    const stdout = child.stdout as NodeJS.ReadableStream;
    stdout.on('data', (chunk: Buffer) => {
      if (first === 0) first = nowNs();
      bytes += chunk.length;
      fs.writeSync(fd, chunk);
    });
    await new Promise<void>((resolve, reject) => {
      stdout.once('end', resolve);
      child.once('error', reject);
    });
    const ms = (nowNs() - first) / 1e6;
    if (bytes !== floodBytes(n)) throw new Error(`floor flood: ${bytes} bytes, expected ${floodBytes(n)}`);
    return bytes / MiB / (ms / 1000);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}

export async function benchLogs(h: Harness, client: DaemonClient, lines: number, rounds: number): Promise<Row[]> {
  let round = 0;
  const [daemon, floor] = await alternate<{ mbps: number; lost: number } | number>(rounds, [
    () => daemonRound(h, client, `flood-${round++}`, lines),
    () => floorRound(h, lines),
  ]);
  const d = (daemon ?? []) as Array<{ mbps: number; lost: number }>;
  const lost = Math.max(...d.map((r) => r.lost));
  return [
    {
      group: 'Logs',
      metric: `log capture of a flooding service (${lines} lines)`,
      value: median(d.map((r) => r.mbps)),
      unit: 'MB/s',
      baselineLabel: 'pipe → file, no lines',
      baseline: median((floor ?? []) as number[]),
      target: null,
      note: `median of ${rounds}`,
    },
    {
      group: 'Logs',
      metric: 'lines lost (worst round)',
      value: lost,
      unit: 'lines',
      baselineLabel: null,
      baseline: null,
      target: { text: '= 0', ok: lost === 0 },
    },
  ];
}
