// CPU and memory per service (issue 8): summed over every process of each run — its process group plus,
// on Linux, every process carrying the run's ADI_SERVICE_ID marker (the same membership the stop sweep
// uses, see process-group.ts). Sampled lazily: a sample is taken when someone lists the services, and
// CPU % is the time used between two samples. An idle daemon that nobody watches never samples.
//
// Linux reads /proc/<pid>/stat (utime + stime + cutime + cstime, rss). Elsewhere (macOS) `ps` supplies
// cpu time and rss per process group; ps runs in the background, so there the figures of a listing are
// those of the previous ps run (the first listing has none).

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { markerFromEnviron } from './process-group.js';

/** One run of a service that may have processes (Service.stateEntries() gives these). */
export interface RunRef {
  pgid: number;
  marker: string;
  /** Date.now() at spawn: the first sample of a run averages over its lifetime, like ps. */
  started_at: number;
}

export interface Usage {
  /** Percent of one core (a multi-threaded or multi-process service can exceed 100). */
  cpu_percent: number | null;
  memory_bytes: number | null;
}

export const NO_USAGE: Usage = Object.freeze({ cpu_percent: null, memory_bytes: null });

/** One process as far as resource use is concerned. */
export interface ProcUsage {
  pid: number;
  pgid: number;
  marker: string | null;
  /** CPU time in seconds, own plus reaped children's (so a child that exits does not make CPU drop). */
  cpuSecs: number;
  rssBytes: number;
}

/**
 * Two listings closer than this reuse the previous CPU figure instead of measuring a tiny window:
 * /proc counts in 10 ms ticks, so a 50 ms window would read as 0 % or 20 %, nothing in between.
 */
export const MIN_WINDOW_MS = 500;

// ---------------------------------------------------------------------------------------------------
// Linux /proc

export interface StatUsage {
  state: string;
  pgid: number;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
  starttime: number;
  /** Resident set size in pages. */
  rssPages: number;
}

/** Fields of /proc/<pid>/stat that resource use needs. The name may hold spaces and ')': split after the last ')'. */
export function parseStatUsage(text: string): StatUsage | null {
  const bytes = Buffer.from(text, 'latin1');
  return parseStatBytes(bytes, bytes.length);
}

/**
 * parseStatUsage on the bytes read, without making a string of them: a listing parses one line per
 * process on the machine. Every field from 4 to 24 must be an integer (proc(5)); later ones are not read.
 */
export function parseStatBytes(buf: Buffer, length: number): StatUsage | null {
  const close = buf.lastIndexOf(0x29, length - 1);
  if (close < 0 || close + 2 >= length) return null;
  let at = close + 2;
  // Field 3, the state: one letter.
  const state = String.fromCharCode(buf[at] as number);
  at++;
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
    for (let c = buf[at] as number; at < length && c >= 48 && c <= 57; c = buf[++at] as number) value = value * 10 + (c - 48);
    if (at === from) return null;
    if (negative) value = -value;
    if (field === 5) pgid = value;
    else if (field >= 14 && field <= 17) ticks += value; // utime stime cutime cstime
    else if (field === 22) starttime = value;
    else if (field === 24) rss = value;
  }
  if (at < length && buf[at] !== 0x20 && buf[at] !== 0x0a) return null;
  return { state, pgid, ticks, starttime, rssPages: Math.max(0, rss) };
}

/** AT_PAGESZ and AT_CLKTCK from /proc/self/auxv: exact values without spawning getconf. */
export function parseAuxv(auxv: Buffer, wordBytes: 4 | 8): { pageSize: number | null; clockTicks: number | null } {
  let pageSize: number | null = null;
  let clockTicks: number | null = null;
  for (let at = 0; at + 2 * wordBytes <= auxv.length; at += 2 * wordBytes) {
    const type = wordBytes === 8 ? Number(auxv.readBigUInt64LE(at)) : auxv.readUInt32LE(at);
    const value = wordBytes === 8 ? Number(auxv.readBigUInt64LE(at + 8)) : auxv.readUInt32LE(at + 4);
    if (type === 0) break; // AT_NULL
    if (type === 6) pageSize = value; // AT_PAGESZ
    if (type === 17) clockTicks = value; // AT_CLKTCK
  }
  return { pageSize, clockTicks };
}

let machine: { pageSize: number; clockTicks: number } | null = null;

function machineUnits(): { pageSize: number; clockTicks: number } {
  if (machine !== null) return machine;
  let found: ReturnType<typeof parseAuxv> = { pageSize: null, clockTicks: null };
  try {
    // auxv is in the host's byte order and word size; every 64-bit Linux Node runs on is little-endian.
    const wordBytes = /64/.test(process.arch) ? 8 : 4;
    if (process.arch !== 's390x' && process.arch !== 'ppc64') found = parseAuxv(fs.readFileSync('/proc/self/auxv'), wordBytes);
  } catch {
    // no auxv: fall back to the values of every common Linux platform
  }
  machine = { pageSize: found.pageSize ?? 4096, clockTicks: found.clockTicks ?? 100 };
  return machine;
}

// A stat line is a few hundred bytes: one reused buffer, no fstat, no allocation per process.
const statBuffer = Buffer.allocUnsafe(4096);

/** What a scan remembers of a process between scans. */
interface Known {
  /** Its /proc/<pid>/stat, kept open; null when over the budget (then opened and closed per scan). */
  fd: number | null;
  starttime: number;
  marker: string | null;
  /** The last scan that saw it. */
  scan: number;
}

/**
 * How many /proc/<pid>/stat files a scanner keeps open: an eighth of the soft open-file limit (Node
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

/**
 * One pass over /proc: every process with its group, its marker and its usage.
 *
 * Each process's stat file is kept open between scans, so a scan costs one pread(2) per process
 * instead of open + read + close: on a VM where a syscall costs ~2 µs and an open + close of a /proc
 * file ~8 µs, a scan of 1,070 processes took 28 ms and takes 11 ms. An open /proc/<pid>/stat stays bound
 * to its process: once that one is gone, a read fails (ESRCH) even if the pid has been reused, so a
 * held file never shows another process's figures. The marker is read from environ once per process
 * (a pid with another start time is another process and is read again); only processes alive at the
 * last scan are remembered, so the memory and the open files are bounded by the process table (and
 * the files by heldStatBudget()).
 */
export class ProcUsageScanner {
  private readonly known = new Map<number, Known>();
  private held = 0;
  private scans = 0;

  constructor(private readonly maxHeld = heldStatBudget()) {}

  scan(): ProcUsage[] {
    let names: string[];
    try {
      names = fs.readdirSync('/proc');
    } catch {
      return [];
    }
    const { pageSize, clockTicks } = machineUnits();
    const scan = ++this.scans;
    const out: ProcUsage[] = [];
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
        continue;
      }
      if (known !== undefined && known.starttime !== stat.starttime) {
        this.forget(pid, known);
        known = undefined;
      }
      if (known === undefined) {
        known = { fd: null, starttime: stat.starttime, marker: readMarker(pid), scan };
        this.known.set(pid, known);
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
      out.push({ pid, pgid: stat.pgid, marker: known.marker, cpuSecs: stat.ticks / clockTicks, rssBytes: stat.rssPages * pageSize });
    }
    for (const [pid, known] of this.known) {
      if (known.scan !== scan) this.forget(pid, known);
    }
    return out;
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

/** pread from offset 0 into statBuffer (a /proc file makes its text afresh for each read from 0). */
function readAt0(fd: number): number {
  try {
    return fs.readSync(fd, statBuffer, 0, statBuffer.length, 0);
  } catch {
    return -1;
  }
}

function readMarker(pid: number): string | null {
  try {
    return markerFromEnviron(fs.readFileSync(`/proc/${pid}/environ`));
  } catch {
    // not ours to read (another user's process): it cannot carry our marker anyway
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// ps (macOS and other Unixes without /proc)

/** ps cputime: "[[dd-]hh:]mm:ss[.ss]" → seconds. */
export function parseCpuTime(text: string): number | null {
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (m === null) return null;
  const [, d, h, min, s] = m;
  return Number(d ?? 0) * 86_400 + Number(h ?? 0) * 3600 + Number(min) * 60 + Number(s);
}

/** Output of `ps -axo pid=,pgid=,rss=,time=` (rss in KiB). */
export function parsePsOutput(text: string): ProcUsage[] {
  const out: ProcUsage[] = [];
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const [pid, pgid, rss] = cols.slice(0, 3).map(Number) as [number, number, number];
    const cpuSecs = parseCpuTime(cols[3] as string);
    if (!Number.isInteger(pid) || !Number.isInteger(pgid) || !Number.isFinite(rss) || cpuSecs === null) continue;
    out.push({ pid, pgid, marker: null, cpuSecs, rssBytes: rss * 1024 });
  }
  return out;
}

/** Runs ps in the background; `scan()` returns what the last run found (empty before the first). */
export class PsUsageScanner {
  private last: ProcUsage[] = [];
  private running = false;

  scan(): ProcUsage[] {
    if (!this.running) {
      this.running = true;
      execFile('ps', ['-axo', 'pid=,pgid=,rss=,time='], { timeout: 5000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
        this.running = false;
        if (err === null) this.last = parsePsOutput(stdout);
      });
    }
    return this.last;
  }
}

// ---------------------------------------------------------------------------------------------------
// Per-service sampling

interface Previous {
  /** The run the baseline belongs to: a restart starts a new baseline. */
  run: string;
  at: number;
  cpuSecs: number;
  cpuPercent: number | null;
}

export interface UsageScanner {
  scan(): ProcUsage[];
  /** Release what the scanner keeps between scans (open files). */
  close?(): void;
}

export function defaultScanner(platform: NodeJS.Platform = process.platform): UsageScanner | null {
  if (platform === 'linux') return new ProcUsageScanner();
  if (platform === 'win32') return null;
  return new PsUsageScanner();
}

/**
 * The process table indexed by group and by marker, built once per sample: summing a service is then
 * proportional to its own processes, not to the whole table (1,000 services x 2,000 processes was a
 * quadratic hot spot of `adi daemon services`).
 */
export class ProcIndex {
  private readonly byPgid = new Map<number, ProcUsage[]>();
  private readonly byMarker = new Map<string, ProcUsage[]>();

  constructor(procs: readonly ProcUsage[]) {
    for (const p of procs) {
      push(this.byPgid, p.pgid, p);
      if (p.marker !== null) push(this.byMarker, p.marker, p);
    }
  }

  /** Sum of the processes of the runs: members by group, or by marker (a process that left the group). */
  sum(runs: readonly RunRef[]): { cpuSecs: number; rssBytes: number; count: number } {
    const counted = new Set<number>();
    let cpuSecs = 0;
    let rssBytes = 0;
    for (const run of runs) {
      for (const group of [this.byPgid.get(run.pgid), this.byMarker.get(run.marker)]) {
        for (const p of group ?? []) {
          if (counted.has(p.pid)) continue;
          counted.add(p.pid);
          cpuSecs += p.cpuSecs;
          rssBytes += p.rssBytes;
        }
      }
    }
    return { cpuSecs, rssBytes, count: counted.size };
  }
}

function push<K>(map: Map<K, ProcUsage[]>, key: K, p: ProcUsage): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [p]);
  else list.push(p);
}

/** Sum of the processes of the runs (one-off; ResourceSampler indexes the table once instead). */
export function sumRuns(procs: readonly ProcUsage[], runs: readonly RunRef[]): { cpuSecs: number; rssBytes: number; count: number } {
  return new ProcIndex(procs).sum(runs);
}

export class ResourceSampler {
  private readonly previous = new Map<string, Previous>();

  constructor(private readonly scanner: UsageScanner | null = defaultScanner()) {}

  /** Release the scanner's open files (a later sample opens them again). */
  close(): void {
    this.scanner?.close?.();
  }

  /**
   * Usage per service name; services without runs (stopped) get nulls. One process-table pass.
   * `complete`: the list holds every service, so baselines of services not in it are dropped.
   */
  sample(services: ReadonlyArray<{ name: string; runs: readonly RunRef[] }>, now = Date.now(), complete = true): Map<string, Usage> {
    const result = new Map<string, Usage>();
    const active = services.filter((s) => s.runs.length > 0);
    const procs = new ProcIndex(this.scanner !== null && active.length > 0 ? this.scanner.scan() : []);
    const keep = new Set<string>();
    for (const s of services) {
      if (s.runs.length === 0 || this.scanner === null) {
        result.set(s.name, NO_USAGE);
        continue;
      }
      keep.add(s.name);
      const sum = procs.sum(s.runs);
      if (sum.count === 0) {
        // ps has not answered yet, or the processes are just gone.
        result.set(s.name, NO_USAGE);
        continue;
      }
      const run = (s.runs[0] as RunRef).marker;
      const prev = this.previous.get(s.name);
      let cpuPercent: number | null;
      if (prev !== undefined && prev.run === run) {
        const window = now - prev.at;
        if (window < MIN_WINDOW_MS) {
          result.set(s.name, { cpu_percent: prev.cpuPercent, memory_bytes: sum.rssBytes });
          continue;
        }
        // Clamped: a child reaped by a process outside the service takes its time with it.
        cpuPercent = percent(Math.max(0, sum.cpuSecs - prev.cpuSecs), window);
      } else {
        // First look at this run: its average since it started (what ps shows).
        const lifetime = now - (s.runs[0] as RunRef).started_at;
        cpuPercent = lifetime > 0 ? percent(sum.cpuSecs, Math.max(lifetime, 10)) : null;
      }
      this.previous.set(s.name, { run, at: now, cpuSecs: sum.cpuSecs, cpuPercent });
      result.set(s.name, { cpu_percent: cpuPercent, memory_bytes: sum.rssBytes });
    }
    for (const s of services) if (!keep.has(s.name)) this.previous.delete(s.name);
    if (complete) for (const name of this.previous.keys()) if (!keep.has(name)) this.previous.delete(name);
    return result;
  }
}

function percent(cpuSecs: number, windowMs: number): number {
  return Math.round((cpuSecs / (windowMs / 1000)) * 1000) / 10;
}
