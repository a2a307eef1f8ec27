// Log capture under a flood, against the physical floor. The service is `seq 1 N` (short lines as fast
// as a pipe takes them); the floor is `seq 1 N | cat > file` run in the same rounds. Both are timed
// from their first instruction (bash writes $EPOCHREALTIME, then execs seq) until the last line is on
// disk: for the floor when `cat` has exited, for the daemon the time of the index record that holds
// the last line (the daemon stamps each chunk when it reads it). Rotation stays on. Every line 1..N
// must be in the log, in order, from stdout. Then the tail that people read: `adi daemon logs NAME -n 100000`, timed whole
// (CLI start-up included).

import fs from 'node:fs';
import path from 'node:path';
import type { DaemonClient } from '../src/index.js';
import { decodeRecord, HEADER_BYTES, OUT, RECORD_BYTES } from '../src/logs/store.js';
import type { Harness } from './harness.js';
import { alternate, median, waitUntil } from './stats.js';
import type { Row } from './table.js';

const MiB = 1024 * 1024;
/** Rotation as configured below: 4 MiB segments, enough of them kept for the whole flood. */
const SEGMENT_BYTES = 4 * MiB;
const MAX_FILES = 20;

/** The bytes `seq 1 n` writes. */
export function seqOutput(n: number): Buffer {
  const parts: string[] = [];
  for (let i = 1; i <= n; i += 100_000) {
    let s = '';
    for (let k = i; k < Math.min(n + 1, i + 100_000); k++) s += `${k}\n`;
    parts.push(s);
  }
  return Buffer.from(parts.join(''));
}

/** The segments of a log, oldest first: `[NAME.log.N, NAME.idx.N]` .. `[NAME.log, NAME.idx]`. */
function segments(base: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let k = MAX_FILES; k >= 1; k--)
    if (fs.existsSync(`${base}.idx.${k}`)) out.push([`${base}.log.${k}`, `${base}.idx.${k}`]);
  out.push([`${base}.log`, `${base}.idx`]);
  return out;
}

/** Stdout of the log (its indexes' out records, in order, across rotations) and the time of the last one. */
function stdoutOf(base: string): { bytes: Buffer; lastMs: number } {
  const parts: Buffer[] = [];
  let lastMs = NaN;
  for (const [data, idx] of segments(base)) {
    const index = fs.readFileSync(idx);
    const fd = fs.openSync(data, 'r');
    try {
      for (let at = HEADER_BYTES; at + RECORD_BYTES <= index.length; at += RECORD_BYTES) {
        const r = decodeRecord(index, at);
        if (r.stream !== OUT || r.len === 0) continue;
        const buf = Buffer.alloc(r.len);
        fs.readSync(fd, buf, 0, r.len, r.start);
        parts.push(buf);
        lastMs = r.time;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return { bytes: Buffer.concat(parts), lastMs };
}

function stampMs(file: string): number {
  return Number(fs.readFileSync(file, 'utf8').trim()) * 1000;
}

interface Capture {
  ms: number;
  lost: number;
}

async function daemonRound(
  h: Harness,
  client: DaemonClient,
  name: string,
  n: number,
  expected: Buffer,
): Promise<Capture> {
  const stamp = path.join(h.scratch, `${name}.start`);
  await client.startService(name, {
    command: '/bin/bash',
    args: ['-c', `echo $EPOCHREALTIME > ${stamp}; exec seq 1 ${n}`],
    restart_on_failure: false,
    // Rotation stays on (about 8 segments for 4 million lines), with enough kept to check every line.
    log_max_bytes: SEGMENT_BYTES,
    log_max_files: MAX_FILES,
  });
  const base = path.join(h.paths.logsDir, name);
  // Watched from outside (a stat), not by asking the daemon: a listing every few ms would take the very
  // CPU being measured. The time measured is the daemon's own stamp of the last chunk, not this poll's.
  const size = (): number => {
    let total = 0;
    for (const [data] of segments(base)) {
      try {
        total += fs.statSync(data).size;
      } catch {
        // Rotated meanwhile: counted at the next poll.
      }
    }
    return total;
  };
  await waitUntil(() => size() >= expected.length, 180_000, `${name} to log ${n} lines`, 50);
  let captured = stdoutOf(base);
  for (let i = 0; i < 100 && captured.bytes.length < expected.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    captured = stdoutOf(base);
  }
  const { bytes, lastMs } = captured;
  await waitUntil(
    async () => (await client.listServices()).find((s) => s.name === name)?.state === 'stopped',
    30_000,
    `${name} to exit`,
    50,
  );
  // Lines lost: the expected lines not found, in order, in what was captured.
  const lost = bytes.equals(expected)
    ? 0
    : n -
      bytes
        .toString('latin1')
        .split('\n')
        .filter((l, i) => l === String(i + 1)).length;
  for (const [data, idx] of segments(base)) for (const f of [data, idx]) fs.rmSync(f, { force: true });
  return { ms: lastMs - stampMs(stamp), lost };
}

async function floorRound(h: Harness, n: number): Promise<number> {
  const start = path.join(h.scratch, 'floor.start');
  const end = path.join(h.scratch, 'floor.end');
  const out = path.join(h.scratch, 'floor.out');
  const r = await h.run(
    '/bin/bash',
    ['-c', `echo $EPOCHREALTIME > ${start}; seq 1 ${n} | cat > ${out}; echo $EPOCHREALTIME > ${end}`],
    { timeoutMs: 180_000 },
  );
  if (r.code !== 0) throw new Error(`floor: exit ${r.code}: ${r.stderr}`);
  fs.rmSync(out, { force: true });
  return stampMs(end) - stampMs(start);
}

async function tailRound(h: Harness, name: string, lines: number): Promise<number> {
  const r = await h.adi(['daemon', 'logs', name, '-n', String(lines)], { timeoutMs: 60_000, capture: false });
  if (r.code !== 0) throw new Error(`adi daemon logs ${name} -n ${lines}: exit ${r.code}`);
  return r.ms;
}

export async function benchLogs(h: Harness, client: DaemonClient, lines: number, rounds: number): Promise<Row[]> {
  const expected = seqOutput(lines);
  const mb = expected.length / MiB;
  let round = 0;
  const [daemon, floor] = await alternate<Capture | number>(rounds, [
    () => daemonRound(h, client, `flood-${round++}`, lines, expected),
    () => floorRound(h, lines),
  ]);
  const d = (daemon ?? []) as Capture[];
  const f = (floor ?? []) as number[];
  const lost = Math.max(...d.map((r) => r.lost));
  const capture = mb / (median(d.map((r) => r.ms)) / 1000);
  const physical = mb / (median(f) / 1000);

  // A tail people read: 100,000 lines of a service that wrote more.
  const tailLines = Math.min(100_000, lines);
  await client.startService('tailed', {
    command: 'seq',
    args: ['1', String(tailLines * 2)],
    restart_on_failure: false,
    log_max_bytes: 1024 * MiB,
  });
  await waitUntil(
    async () => (await client.listServices()).find((s) => s.name === 'tailed')?.state === 'stopped',
    60_000,
    'tailed to finish',
    20,
  );
  const tails: number[] = [];
  for (let i = 0; i < rounds; i++) tails.push(await tailRound(h, 'tailed', tailLines));
  const tailMs = median(tails);

  return [
    {
      group: 'Logs',
      metric: `log capture of \`seq 1 ${lines}\` (first instruction to last line in the log)`,
      value: capture,
      unit: 'MB/s',
      baselineLabel: '`seq | cat > file`',
      baseline: physical,
      target: { text: '≥ 0.5x', ok: capture >= 0.5 * physical },
      note: `median of ${rounds}; ${median(d.map((r) => r.ms)).toFixed(0)} ms vs ${median(f).toFixed(0)} ms`,
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
    {
      group: 'Logs',
      metric: `\`adi daemon logs NAME -n ${tailLines}\` (whole command)`,
      value: tailMs,
      unit: 'ms',
      baselineLabel: null,
      baseline: null,
      target: { text: '< 500 ms', ok: tailMs < 500 },
      note: `median of ${rounds}`,
    },
  ];
}
