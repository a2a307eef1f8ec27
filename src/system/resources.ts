// CPU and memory per service: summed over every process of each run — its process group plus,
// on Linux, every process carrying the run's ADI_SERVICE_ID marker (the same membership the stop sweep
// uses, see process-group.ts). Sampled lazily: a sample is taken when someone lists the services, and
// CPU % is the time used between two samples. An idle daemon that nobody watches never samples.
//
// Linux reads the process table (proc.ts: utime + stime + cutime + cstime, rss). Elsewhere (macOS) `ps` supplies
// cpu time and rss per process group; ps runs in the background, so there the figures of a listing are
// those of the previous ps run (the first listing has none).

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { ProcTable, processTable } from './proc.js';

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
    if (process.arch !== 's390x' && process.arch !== 'ppc64')
      found = parseAuxv(fs.readFileSync('/proc/self/auxv'), wordBytes);
  } catch {
    // no auxv: fall back to the values of every common Linux platform
  }
  machine = { pageSize: found.pageSize ?? 4096, clockTicks: found.clockTicks ?? 100 };
  return machine;
}

/**
 * One pass over the process table (proc.ts, which keeps stat files open between scans): every live
 * process with its group, its marker and its usage. A process's marker is read once.
 */
export class ProcUsageScanner {
  private readonly table: ProcTable;

  /** `table`: a table of its own (keeping at most that many files open), or a shared one. */
  constructor(table: ProcTable | number = new ProcTable()) {
    this.table = typeof table === 'number' ? new ProcTable(table) : table;
  }

  scan(): ProcUsage[] {
    const { pageSize, clockTicks } = machineUnits();
    const out: ProcUsage[] = [];
    this.table.forEach('cached', (pid, stat, markers) => {
      if (stat.state !== 'Z')
        out.push({
          pid,
          pgid: stat.pgid,
          marker: markers.marker,
          cpuSecs: stat.ticks / clockTicks,
          rssBytes: stat.rssPages * pageSize,
        });
    });
    return out;
  }

  /** Close the files kept open (a later scan opens them again). */
  close(): void {
    this.table.close();
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
      execFile(
        'ps',
        ['-axo', 'pid=,pgid=,rss=,time='],
        { timeout: 5000, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout) => {
          this.running = false;
          if (err === null) this.last = parsePsOutput(stdout);
        },
      );
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
  if (platform === 'linux') return new ProcUsageScanner(processTable);
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
export function sumRuns(
  procs: readonly ProcUsage[],
  runs: readonly RunRef[],
): { cpuSecs: number; rssBytes: number; count: number } {
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
  sample(
    services: ReadonlyArray<{ name: string; runs: readonly RunRef[] }>,
    now = Date.now(),
    complete = true,
  ): Map<string, Usage> {
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
