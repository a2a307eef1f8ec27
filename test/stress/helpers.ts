// Shared by the stress and fault suite: measuring a daemon from outside (/proc fd count and RSS),
// finding every service process of a test's daemon (by its HOME and the ADI_SERVICE_ID marker), and
// starting a daemon through the real CLI.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { adi, alive, type TempHome } from '../helpers/env.js';
import { environHas, environOf, liveProcesses, rssKb } from '../helpers/proc.js';

/** Open file descriptors of a process. */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export { rssKb };

/**
 * Wait until `measure()` is at most `limit` (polling; a closed socket's fd goes when the daemon's event
 * loop gets to it). Returns the last value either way, so the caller's assertion shows it.
 */
export async function settleAtMost(measure: () => number, limit: number, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let value = measure();
  while (value > limit && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    value = measure();
  }
  return value;
}

export interface MarkedProcess {
  pid: number;
  ppid: number;
  pgid: number;
  /** The run's ADI_SERVICE_ID. */
  marker: string;
  /** ADI_SERVICE_NAME. */
  name: string | null;
}

/** Live (non-zombie) processes started by a daemon of this HOME: they carry HOME and a run marker. */
export function markedProcesses(home: string): MarkedProcess[] {
  return liveProcesses()
    .filter((p) => p.marker !== null && environHas(p.pid, `HOME=${home}`))
    .map((p) => ({ pid: p.pid, ppid: p.ppid, pgid: p.pgid, marker: p.marker as string, name: p.name }));
}

/** The ADI_SERVICE_ID of one process, or null. */
export function markerOf(pid: number): string | null {
  return environOf(pid).ADI_SERVICE_ID ?? null;
}

/** `adi daemon start` in this HOME; returns the daemon's pid. */
export async function startDaemon(h: TempHome, env: NodeJS.ProcessEnv = h.env): Promise<number> {
  const r = await adi(['daemon', 'start'], env, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `adi daemon start: ${r.stdout}${r.stderr}`);
  const pid = Number(/pid (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(pid > 0 && alive(pid), r.stdout);
  return pid;
}

/** Kill every live process of `pids` (test clean-up after a failure). */
export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** The daemon's own log, for assertions on what it reported. */
export function daemonLog(h: TempHome): string {
  try {
    return fs.readFileSync(h.paths.logFile, 'utf8');
  } catch {
    return '';
  }
}
