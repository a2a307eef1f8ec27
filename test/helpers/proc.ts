// The tests' view of the process table: the daemon's own scanner and stat parser (src/system/proc.ts),
// with what tests look for in a process's environment and command line.

import fs from 'node:fs';
import { ProcTable, type ProcRecord } from '../../src/system/proc.js';

// Keeps no stat files open: tests count the files the daemon holds.
const table = new ProcTable(0);

/** Every live (non-zombie) process but this one, its environment read afresh. */
export function liveProcesses(): ProcRecord[] {
  return table.scan('fresh').filter((p) => p.state !== 'Z' && p.state !== 'X');
}

/** Every pid in /proc but this process's (zombies included), without reading any of their files. */
export function processIds(): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) out.push(pid);
  }
  return out;
}

/** /proc/<pid>/environ as a map, empty when gone or not ours to read (root may read anyone's). */
export function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    for (const kv of fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
    }
  } catch {
    // gone
  }
  return out;
}

/** Whether the process's environment holds exactly `entry` ("KEY=value"). */
export function environHas(pid: number, entry: string): boolean {
  try {
    const environ = Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${pid}/environ`), Buffer.from([0])]);
    return environ.includes(Buffer.from(`\0${entry}\0`));
  } catch {
    return false;
  }
}

/** The process's argv, or null when it is gone. */
export function cmdlineOf(pid: number): string[] | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

/** The first number on a `Key:` line of /proc/<pid>/status, or null when the process is gone. */
function statusField(pid: number, key: string): number | null {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** Resident set size in KiB; throws when the process is gone. */
export function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

/** The real uid of a process, or null when it is gone. */
export function uidOf(pid: number): number | null {
  return statusField(pid, 'Uid');
}

/** Live (non-zombie) processes running as one of these uids. */
export function pidsOfUids(uids: ReadonlySet<number>): number[] {
  return liveProcesses()
    .map((p) => p.pid)
    .filter((pid) => {
      const uid = uidOf(pid);
      return uid !== null && uids.has(uid);
    });
}
