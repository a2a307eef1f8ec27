// Crash-to-restart latency for a first crash: from the SIGKILL until the new process runs the service's
// own code, which writes a timestamp as its first act. Two services: a plain binary (bash, stamping with
// its builtin $EPOCHREALTIME, so no extra process is forked) and a Node.js program
// (test/fixtures/start-stamp.js, stamping with the monotonic clock). The floor is Node's own spawn:
// child_process.spawn of the same command, with the daemon's spawn options, until its stamp.

import fs from 'node:fs';
import path from 'node:path';
import type { DaemonClient, ServiceConfig } from '../src/index.js';
import { FIXTURES, type Harness } from './harness.js';
import { alternate, median, nowNs, realtimeOffsetUs, sleep, waitUntil } from './stats.js';
import type { Row } from './table.js';

export type StampKind = 'binary' | 'node';

export interface StampCommand {
  command: string;
  args: string[];
}

interface Stamp {
  /** Microseconds on the stamp's clock. */
  us: number;
  pid: number;
}

const BASH = ['/bin/bash', '/usr/bin/bash'].find((p) => fs.existsSync(p)) ?? null;

export function stampCommand(kind: StampKind, file: string): StampCommand {
  if (kind === 'node') return { command: process.execPath, args: [path.join(FIXTURES, 'start-stamp.js'), file] };
  if (BASH !== null)
    return { command: BASH, args: ['-c', 'echo "$EPOCHREALTIME $$" >> "$0"; exec sleep 100000', file] };
  return { command: '/bin/sh', args: ['-c', 'echo "$(date +%s%N) $$" >> "$0"; exec sleep 100000', file] };
}

/** Parse the stamps written so far: realtime "sec.micro pid" or "ns pid" (binary), "ms ns pid" (node). */
export function readStamps(kind: StampKind, file: string): Stamp[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return [];
  }
  const out: Stamp[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (kind === 'node') {
      if (f.length !== 3) continue;
      out.push({ us: Number(f[1]) / 1000, pid: Number(f[2]) });
    } else {
      if (f.length !== 2) continue;
      const [t, pid] = f as [string, string];
      const dot = t.indexOf('.');
      const us =
        dot >= 0
          ? Number(t.slice(0, dot)) * 1e6 +
            Number(
              t
                .slice(dot + 1)
                .padEnd(6, '0')
                .slice(0, 6),
            )
          : Number(t) / 1000;
      out.push({ us, pid: Number(pid) });
    }
  }
  return out;
}

/** Now, in microseconds on the clock the kind's stamps use. */
function clockUs(kind: StampKind): () => number {
  if (kind === 'node') return () => nowNs() / 1000;
  const offset = realtimeOffsetUs();
  return () => nowNs() / 1000 + offset;
}

/** Wait until the file holds `count` stamps; returns the last. */
export async function waitForStamp(kind: StampKind, file: string, count: number, timeoutMs = 15_000): Promise<Stamp> {
  let last: Stamp | undefined;
  await waitUntil(
    () => {
      const stamps = readStamps(kind, file);
      last = stamps[count - 1];
      return stamps.length >= count;
    },
    timeoutMs,
    `stamp ${count} in ${path.basename(file)}`,
    1,
  );
  return last as Stamp;
}

/**
 * SIGKILL the process of the last stamp and wait for the next stamp (whoever restarts it); returns
 * the milliseconds from the kill to the new process's first act.
 */
export async function killAndTimeRestart(kind: StampKind, file: string, timeoutMs = 15_000): Promise<number> {
  const stamps = readStamps(kind, file);
  const last = stamps[stamps.length - 1];
  if (last === undefined) throw new Error(`no stamp in ${file}`);
  // Let the supervisor see the process as running before it dies.
  await sleep(50);
  const now = clockUs(kind);
  const killedAt = now();
  process.kill(last.pid, 'SIGKILL');
  const next = await waitForStamp(kind, file, stamps.length + 1, timeoutMs);
  return (next.us - killedAt) / 1000;
}

/**
 * The floor: spawn the same command directly (the daemon's spawn options) until it stamps. `wrap`
 * starts it through another program first (the rlimits bench: prlimit).
 */
export async function spawnFloorMs(
  h: Harness,
  kind: StampKind,
  file: string,
  wrap: (c: StampCommand) => StampCommand = (c) => c,
): Promise<number> {
  const { command, args } = wrap(stampCommand(kind, file));
  const before = readStamps(kind, file).length;
  const now = clockUs(kind);
  const t0 = now();
  const child = h.spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const stamp = await waitForStamp(kind, file, before + 1);
    return (stamp.us - t0) / 1000;
  } finally {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export async function benchRestart(
  h: Harness,
  client: DaemonClient,
  samples: number,
): Promise<{ rows: Row[]; floors: Record<StampKind, number> }> {
  const files: Record<StampKind, string> = {
    binary: path.join(h.scratch, 'stamp-bin'),
    node: path.join(h.scratch, 'stamp-node'),
  };
  const floorFiles: Record<StampKind, string> = {
    binary: path.join(h.scratch, 'floor-bin'),
    node: path.join(h.scratch, 'floor-node'),
  };
  const names: Record<StampKind, string> = { binary: 'crash-bin', node: 'crash-node' };

  const adiSample = async (kind: StampKind): Promise<number> => {
    const { command, args } = stampCommand(kind, files[kind]);
    const config: ServiceConfig = { command, args, stop_timeout: 1 };
    const before = readStamps(kind, files[kind]).length;
    // A user start resets the restart policy: every kill below is a first crash.
    await client.startService(names[kind], config);
    await waitForStamp(kind, files[kind], before + 1);
    const ms = await killAndTimeRestart(kind, files[kind]);
    await client.stopService(names[kind], true);
    return ms;
  };

  // Warm-up (page cache, the daemon's JIT), not counted.
  await adiSample('binary');
  await adiSample('node');
  await spawnFloorMs(h, 'binary', floorFiles.binary);
  await spawnFloorMs(h, 'node', floorFiles.node);

  const [bin, binFloor, node, nodeFloor] = await alternate<number>(samples, [
    () => adiSample('binary'),
    () => spawnFloorMs(h, 'binary', floorFiles.binary),
    () => adiSample('node'),
    () => spawnFloorMs(h, 'node', floorFiles.node),
  ]);
  const b = median(bin ?? []);
  const bf = median(binFloor ?? []);
  const n = median(node ?? []);
  const nf = median(nodeFloor ?? []);
  return {
    floors: { binary: bf, node: nf },
    rows: [
      {
        group: 'Restart',
        metric: 'first crash → restart, plain binary',
        value: b,
        unit: 'ms',
        baselineLabel: 'spawn floor',
        baseline: bf,
        target: { text: '≤ 10 ms', ok: b <= 10 },
        note: `median of ${samples}`,
      },
      {
        group: 'Restart',
        metric: 'first crash → restart, Node.js service',
        value: n,
        unit: 'ms',
        baselineLabel: 'spawn floor',
        baseline: nf,
        target: { text: '≤ floor + 10 ms', ok: n <= nf + 10 },
        note: `median of ${samples}`,
      },
    ],
  };
}
