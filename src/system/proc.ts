// The process table: the one reader of /proc/<pid>/stat, for the stop sweep, crash recovery and the
// resource figures of listings alike. Linux only (HAS_PROC); elsewhere callers fall back to kill(0)
// and ps.
//
// Each process's stat file is kept open between scans, so a scan costs one pread(2) per process
// instead of open + read + close: on a VM where a syscall costs ~2 µs and an open + close of a /proc
// file ~8 µs, a scan of 1,070 processes took 28 ms and takes 11 ms. An open /proc/<pid>/stat stays bound
// to its process: once that one is gone, a read fails (ESRCH) even if the pid has been reused, so a
// held file never shows another process's figures. Only processes alive at the last scan are
// remembered, so the memory and the open files are bounded by the process table (and the files by
// heldStatBudget()).

import fs from 'node:fs';
import fsp from 'node:fs/promises';

/** The marker every process of a run inherits; the stop sweep finds double-forked children by it. */
export const SERVICE_ID_ENV = 'ADI_SERVICE_ID';
export const SERVICE_NAME_ENV = 'ADI_SERVICE_NAME';
/**
 * Names the daemon's data dir in every run's environment: a later daemon of the same data dir finds
 * by it, in /proc, whatever an earlier one spawned, recorded in the state file or not. A hash of the
 * dir's real path, not the path: a separated service learns nothing of the admin's home from it.
 */
export const DAEMON_INSTANCE_ENV = 'ADI_DAEMON_INSTANCE';

/** Whether this platform has a /proc we can sweep by marker. */
export const HAS_PROC = process.platform === 'linux';

export interface ProcStat {
  /** One-letter state ('Z' for a zombie). */
  state: string;
  ppid: number;
  pgid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
  /** Field 22: clock ticks after boot at which the process started; with the pid it names one process. */
  starttime: number;
  /** Resident set size in pages. */
  rssPages: number;
}

/**
 * Parses the bytes of a /proc/<pid>/stat without making a string of them (a listing parses one line
 * per process on the machine). The name may hold spaces and ')': fields start after the last ')'.
 * Every field from 4 to 24 must be an integer (proc(5)); later ones are not read.
 */
export function parseStatBytes(buf: Buffer, length: number): ProcStat | null {
  const close = buf.lastIndexOf(0x29, length - 1);
  if (close < 0 || close + 2 >= length) return null;
  let at = close + 2;
  // Field 3, the state: one letter.
  const state = String.fromCharCode(buf[at] as number);
  at++;
  let ppid = 0;
  let pgid = 0;
  let ticks = 0;
  let starttime = 0;
  let rss = 0;
  for (let field = 4; field <= 24; field++) {
    if (buf[at] !== 0x20) return null;
    at++;
    const negative = buf[at] === 0x2d;
    if (negative) at++;
    const from = at;
    let value = 0;
    for (let c = buf[at] as number; at < length && c >= 48 && c <= 57; c = buf[++at] as number)
      value = value * 10 + (c - 48);
    if (at === from) return null;
    if (negative) value = -value;
    if (field === 4) ppid = value;
    else if (field === 5) pgid = value;
    else if (field >= 14 && field <= 17) ticks += value; // utime stime cutime cstime
    else if (field === 22) starttime = value;
    else if (field === 24) rss = value;
  }
  if (at < length && buf[at] !== 0x20 && buf[at] !== 0x0a) return null;
  return { state, ppid, pgid, ticks, starttime, rssPages: Math.max(0, rss) };
}

/** parseStatBytes of /proc/<pid>/stat text. */
export function parseProcStat(text: string): ProcStat | null {
  const bytes = Buffer.from(text, 'latin1');
  return parseStatBytes(bytes, bytes.length);
}

export function readProcStatSync(pid: number): ProcStat | null {
  if (!HAS_PROC) return null;
  const buf = readProcFile(`/proc/${pid}/stat`);
  return buf === null ? null : parseStatBytes(buf, buf.length);
}

export async function readProcStat(pid: number): Promise<ProcStat | null> {
  if (!HAS_PROC) return null;
  try {
    const buf = await fsp.readFile(`/proc/${pid}/stat`);
    return parseStatBytes(buf, buf.length);
  } catch {
    return null;
  }
}

const MARKER_PREFIX = Buffer.from(`${SERVICE_ID_ENV}=`);
const INSTANCE_PREFIX = Buffer.from(`${DAEMON_INSTANCE_ENV}=`);
const NAME_PREFIX = Buffer.from(`${SERVICE_NAME_ENV}=`);

export interface Markers {
  /** ADI_SERVICE_ID: the run it belongs to. */
  marker: string | null;
  /** ADI_DAEMON_INSTANCE: the data dir of the daemon that started its run. */
  instance: string | null;
  /** ADI_SERVICE_NAME. */
  name: string | null;
}

const NO_MARKERS: Markers = Object.freeze({ marker: null, instance: null, name: null });

/** The ADI_SERVICE_ID value in a raw /proc/<pid>/environ, or null. */
export function markerFromEnviron(environ: Buffer): string | null {
  return markersFromEnviron(environ).marker;
}

function startsWith(buf: Buffer, at: number, stop: number, prefix: Buffer): boolean {
  return stop - at > prefix.length && buf.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0;
}

/** The run marker, the daemon's data dir and the service name in a raw /proc/<pid>/environ (each null when absent). */
export function markersFromEnviron(environ: Buffer): Markers {
  let marker: string | null = null;
  let instance: string | null = null;
  let name: string | null = null;
  let at = 0;
  while (at < environ.length) {
    const end = environ.indexOf(0, at);
    const stop = end === -1 ? environ.length : end;
    // The first occurrence counts, as getenv() would see it.
    if (marker === null && startsWith(environ, at, stop, MARKER_PREFIX))
      marker = environ.toString('latin1', at + MARKER_PREFIX.length, stop);
    else if (instance === null && startsWith(environ, at, stop, INSTANCE_PREFIX))
      instance = environ.toString('utf8', at + INSTANCE_PREFIX.length, stop);
    else if (name === null && startsWith(environ, at, stop, NAME_PREFIX))
      name = environ.toString('latin1', at + NAME_PREFIX.length, stop);
    at = stop + 1;
  }
  return { marker, instance, name };
}

// /proc files report size 0, so they are read into one reused buffer, grown as needed up to a bound
// (an environment can be up to a few MiB; a marker past that is not looked for).
const READ_BOUND = 8 * 1024 * 1024;
let readBuffer = Buffer.allocUnsafe(64 * 1024);

/** The whole file in the shared buffer (valid until the next read), or null. */
function readProcFile(file: string): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    let length = 0;
    while (true) {
      if (length === readBuffer.length) {
        if (readBuffer.length >= READ_BOUND) break;
        const bigger = Buffer.allocUnsafe(readBuffer.length * 2);
        readBuffer.copy(bigger, 0, 0, length);
        readBuffer = bigger;
      }
      const n = fs.readSync(fd, readBuffer, length, readBuffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return readBuffer.subarray(0, length);
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/** The markers of a process; none when its environ is not ours to read (it cannot carry our marker then). */
function readMarkers(pid: number): Markers {
  const environ = readProcFile(`/proc/${pid}/environ`);
  return environ === null ? NO_MARKERS : markersFromEnviron(environ);
}

/** One process as a scan saw it: its stat fields and the markers in its environment (none for a zombie). */
export interface ProcRecord extends ProcStat, Markers {
  pid: number;
}

/**
 * How many /proc/<pid>/stat files a table keeps open: an eighth of the soft open-file limit (Node
 * raises it to the hard limit at start-up), so the daemon's own files (3 per service) keep most of
 * it; at most 4096.
 */
export function heldStatBudget(limits: string | null = readLimits()): number {
  const soft = limits === null ? NaN : Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
  return Number.isFinite(soft) ? Math.min(4096, Math.floor(soft / 8)) : 128;
}

function readLimits(): string | null {
  try {
    return fs.readFileSync('/proc/self/limits', 'latin1');
  } catch {
    return null;
  }
}

// A stat line is a few hundred bytes: one reused buffer, no fstat, no allocation per process.
const statBuffer = Buffer.allocUnsafe(4096);

/** pread from offset 0 into statBuffer (a /proc file makes its text afresh for each read from 0). */
function readAt0(fd: number): number {
  try {
    return fs.readSync(fd, statBuffer, 0, statBuffer.length, 0);
  } catch {
    return -1;
  }
}

/** What a table remembers of a live process between scans. */
interface Known {
  /** Its /proc/<pid>/stat, kept open; null when over the budget (then opened and closed per scan). */
  fd: number | null;
  starttime: number;
  markers: Markers;
  /** The last scan that saw it. */
  scan: number;
}

function record(pid: number, s: ProcStat, m: Markers): ProcRecord {
  return {
    pid,
    state: s.state,
    ppid: s.ppid,
    pgid: s.pgid,
    ticks: s.ticks,
    starttime: s.starttime,
    rssPages: s.rssPages,
    marker: m.marker,
    instance: m.instance,
    name: m.name,
  };
}

/**
 * The process table. `scan('cached')` reads a process's environment once (a pid with another start
 * time is another process and is read again): enough for resource figures. `scan('fresh')` reads it
 * at every scan, for the stop sweep and recovery, which act on what a process carries now (it may
 * have exec'd with another environment).
 */
export class ProcTable {
  private readonly known = new Map<number, Known>();
  private held = 0;
  private scans = 0;

  constructor(private readonly maxHeld = heldStatBudget()) {}

  /** Every process but this one, zombies included (their markers are not read). */
  scan(environ: 'cached' | 'fresh'): ProcRecord[] {
    const out: ProcRecord[] = [];
    this.forEach(environ, (pid, stat, markers) => out.push(record(pid, stat, markers)));
    return out;
  }

  /** scan() without building records: a listing visits every process on the machine. */
  forEach(environ: 'cached' | 'fresh', visit: (pid: number, stat: ProcStat, markers: Markers) => void): void {
    if (!HAS_PROC) return;
    let names: string[];
    try {
      names = fs.readdirSync('/proc');
    } catch {
      return;
    }
    const scan = ++this.scans;
    for (const name of names) {
      const c = name.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      const pid = Number(name);
      if (pid === process.pid) continue;
      let known = this.known.get(pid);
      let length = known !== undefined && known.fd !== null ? readAt0(known.fd) : -1;
      let opened: number | null = null;
      if (length <= 0) {
        // A held file that cannot be read: the process it was opened on is gone (ESRCH), whatever
        // now has its pid.
        if (known !== undefined && known.fd !== null) {
          this.forget(pid, known);
          known = undefined;
        }
        try {
          opened = fs.openSync(`/proc/${pid}/stat`, 'r');
        } catch {
          continue;
        }
        length = readAt0(opened);
      }
      const stat = length > 0 ? parseStatBytes(statBuffer, length) : null;
      if (stat === null || stat.state === 'Z') {
        if (opened !== null) fs.closeSync(opened);
        if (stat !== null) visit(pid, stat, NO_MARKERS);
        continue;
      }
      if (known !== undefined && known.starttime !== stat.starttime) {
        this.forget(pid, known);
        known = undefined;
      }
      if (known === undefined) {
        known = { fd: null, starttime: stat.starttime, markers: readMarkers(pid), scan };
        this.known.set(pid, known);
      } else if (environ === 'fresh') {
        known.markers = readMarkers(pid);
      }
      if (opened !== null) {
        if (known.fd === null && this.held < this.maxHeld) {
          known.fd = opened;
          this.held++;
        } else {
          fs.closeSync(opened);
        }
      }
      known.scan = scan;
      visit(pid, stat, known.markers);
    }
    for (const [pid, known] of this.known) {
      if (known.scan !== scan) this.forget(pid, known);
    }
  }

  /** Close the files kept open (a later scan opens them again). */
  close(): void {
    for (const [pid, known] of this.known) this.forget(pid, known);
  }

  private forget(pid: number, known: Known): void {
    if (known.fd !== null) {
      fs.closeSync(known.fd);
      known.fd = null;
      this.held--;
    }
    this.known.delete(pid);
  }
}

/** The daemon's table: the stop sweep, recovery and the listings' figures share its open files. */
export const processTable = new ProcTable();
