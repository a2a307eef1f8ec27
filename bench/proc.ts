// What the kernel says about a process: resident memory and CPU time (Linux /proc).

import fs from 'node:fs';

/** A "<Name>: <n> kB" line of /proc/<pid>/status, in bytes, or NaN when unknown. */
function statusBytes(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** VmRSS of a process in bytes, or NaN when unknown. */
export function rssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/** RssAnon of a process in bytes (its private memory, without the shared pages of the node binary). */
export function rssAnonBytes(pid: number): number {
  return statusBytes(pid, 'RssAnon');
}

/** utime + stime of a process in clock ticks (fields 14 and 15 of /proc/<pid>/stat), or NaN. */
export function cpuTicks(pid: number): number {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3, so field N is f[N - 3].
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

/** Clock ticks per second (USER_HZ); 100 on every Linux build that matters. */
export const TICKS_PER_SEC = 100;

/** The 1, 5 and 15 minute load averages, as the kernel prints them. */
export function loadAverage(): string {
  try {
    return fs.readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}
