// Finding and ending every process of a service run: its process group (the service runs as a session
// leader, see launch.ts) plus, on Linux, every process whose environment carries the run's marker, which
// catches children that called setsid() and left the group (double-forked daemons) — the PM2 and
// supervisord "orphans after stop" bugs. Stop is systemd's: SIGTERM, wait, SIGKILL, and confirm.

import fsSync from 'node:fs';
import fs from 'node:fs/promises';

/** The marker every process of a run inherits; the stop sweep finds double-forked children by it. */
export const SERVICE_ID_ENV = 'ADI_SERVICE_ID';
export const SERVICE_NAME_ENV = 'ADI_SERVICE_NAME';
/**
 * Names the daemon's data dir in every run's environment: a later daemon of the same data dir finds
 * by it, in /proc, whatever an earlier one spawned, recorded in the state file or not. A hash of the
 * dir's real path, not the path: a separated service learns nothing of the admin's home from it.
 */
export const DAEMON_INSTANCE_ENV = 'ADI_DAEMON_INSTANCE';

export interface ProcEntry {
  pid: number;
  pgid: number;
  /** One-letter state from /proc/<pid>/stat ('Z' for a zombie). */
  state: string;
  /** The value of ADI_SERVICE_ID in its environment, or null. */
  marker: string | null;
  /** ADI_DAEMON_INSTANCE: names the data dir of the daemon that started its run (crash recovery scans by it), or null. */
  instance?: string | null;
  /** ADI_SERVICE_NAME, read only along with an instance. */
  name?: string | null;
}

export interface ProcStat {
  state: string;
  ppid: number;
  pgid: number;
  /** Field 22: clock ticks after boot at which the process started; with the pid it names one process. */
  starttime: number;
}

/** Whether this platform has a /proc we can sweep by marker. */
export const HAS_PROC = process.platform === 'linux';

/** Parse /proc/<pid>/stat text. The command name may hold spaces and ')', so split after the last ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): field N is f[N - 3].
  const state = f[0];
  const ppid = Number(f[1]);
  const pgid = Number(f[2]);
  const starttime = Number(f[19]);
  if (state === undefined || !Number.isInteger(ppid) || !Number.isInteger(pgid) || !Number.isFinite(starttime)) return null;
  return { state, ppid, pgid, starttime };
}

export async function readProcStat(pid: number): Promise<ProcStat | null> {
  if (!HAS_PROC) return null;
  try {
    return parseProcStat(await fs.readFile(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return null;
  }
}

const MARKER_PREFIX = Buffer.from(`${SERVICE_ID_ENV}=`);
const INSTANCE_PREFIX = Buffer.from(`${DAEMON_INSTANCE_ENV}=`);
const NAME_PREFIX = Buffer.from(`${SERVICE_NAME_ENV}=`);

/** The ADI_SERVICE_ID value in a raw /proc/<pid>/environ, or null. */
export function markerFromEnviron(environ: Buffer): string | null {
  return markersFromEnviron(environ).marker;
}

function startsWith(buf: Buffer, at: number, stop: number, prefix: Buffer): boolean {
  return stop - at > prefix.length && buf.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0;
}

/** The run marker, the daemon's data dir and the service name in a raw /proc/<pid>/environ (each null when absent). */
export function markersFromEnviron(environ: Buffer): { marker: string | null; instance: string | null; name: string | null } {
  let marker: string | null = null;
  let instance: string | null = null;
  let name: string | null = null;
  let at = 0;
  while (at < environ.length) {
    const end = environ.indexOf(0, at);
    const stop = end === -1 ? environ.length : end;
    // The first occurrence counts, as getenv() would see it.
    if (marker === null && startsWith(environ, at, stop, MARKER_PREFIX)) marker = environ.toString('latin1', at + MARKER_PREFIX.length, stop);
    else if (instance === null && startsWith(environ, at, stop, INSTANCE_PREFIX)) instance = environ.toString('utf8', at + INSTANCE_PREFIX.length, stop);
    else if (name === null && startsWith(environ, at, stop, NAME_PREFIX)) name = environ.toString('latin1', at + NAME_PREFIX.length, stop);
    at = stop + 1;
  }
  return { marker, instance, name };
}

// /proc files report size 0, so they are read into one reused buffer, grown as needed up to a bound
// (an environment can be up to a few MiB; a marker past that is not looked for).
const READ_BOUND = 8 * 1024 * 1024;
let readBuffer = Buffer.allocUnsafe(64 * 1024);

function readProcFile(file: string): Buffer | null {
  let fd: number;
  try {
    fd = fsSync.openSync(file, 'r');
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
      const n = fsSync.readSync(fd, readBuffer, length, readBuffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return readBuffer.subarray(0, length);
  } catch {
    return null;
  } finally {
    fsSync.closeSync(fd);
  }
}

function readEntrySync(pid: number): ProcEntry | null {
  const statBuf = readProcFile(`/proc/${pid}/stat`);
  if (statBuf === null) return null;
  const stat = parseProcStat(statBuf.toString('latin1'));
  if (stat === null) return null;
  if (stat.state !== 'Z') {
    // Readable for our own processes (or all, as root); others are not ours to sweep anyway.
    const environ = readProcFile(`/proc/${pid}/environ`);
    if (environ !== null) {
      const found = markersFromEnviron(environ);
      if (found.instance === null) return { pid, pgid: stat.pgid, state: stat.state, marker: found.marker };
      return { pid, pgid: stat.pgid, state: stat.state, ...found };
    }
  }
  return { pid, pgid: stat.pgid, state: stat.state, marker: null };
}

/**
 * One pass over /proc. Synchronous reads on purpose: a few microseconds per file, where the promise
 * API costs ~10x that in thread-pool round trips (measured: 73 processes, ~3 ms sync vs ~20 ms async).
 */
export function scanProcessesSync(): ProcEntry[] {
  if (!HAS_PROC) return [];
  let names: string[];
  try {
    names = fsSync.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcEntry[] = [];
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const entry = readEntrySync(pid);
    if (entry !== null) out.push(entry);
  }
  return out;
}

/**
 * Shares /proc scans between waiters woken in the same event-loop turn (stopAll of 100 services whose
 * poll timers fire together scans once, not 100 times). The result is dropped at the next turn, so a
 * caller never sees a scan older than the turn it runs in.
 */
export class ProcScanner {
  private cached: ProcEntry[] | null = null;

  scan(): Promise<ProcEntry[]> {
    if (this.cached === null) {
      this.cached = scanProcessesSync();
      setImmediate(() => {
        this.cached = null;
      });
    }
    return Promise.resolve(this.cached);
  }

  /** Forget the cached scan: call after creating a process, which an older scan cannot show. */
  invalidate(): void {
    this.cached = null;
  }
}

export const sharedScanner = new ProcScanner();

/** What belongs to one run: its process group and its marker. */
export interface RunTarget {
  pgid: number;
  marker: string;
  /**
   * Whether the run's main process is known to be alive (our child, no 'exit' event yet). It counts as
   * live whatever a scan says: the one process we know for certain is never missed.
   */
  leaderAlive?: () => boolean;
  /**
   * Signals the group with the rights the run was started with, for a run of another user that this
   * process may not signal (a non-root daemon's service started through sudo, see run-as.ts). Called
   * besides the direct kill(2), at most once a second per signal: it spawns a helper.
   */
  signalVia?: (pgid: number, signal: NodeJS.Signals) => void;
}

/** How often a `signalVia` helper is spawned again for the same signal while a stop keeps polling. */
const SIGNAL_VIA_INTERVAL_MS = 1000;

/** Live (non-zombie) processes of the targets. A zombie is dead: only its parent's reaping is left. */
export function liveMembers(entries: readonly ProcEntry[], targets: readonly RunTarget[]): ProcEntry[] {
  const pgids = new Set(targets.map((t) => t.pgid));
  const markers = new Set(targets.map((t) => t.marker));
  const live = entries.filter((e) => e.state !== 'Z' && (pgids.has(e.pgid) || (e.marker !== null && markers.has(e.marker))));
  for (const t of targets) {
    if (t.leaderAlive?.() === true && !live.some((e) => e.pid === t.pgid)) live.push({ pid: t.pgid, pgid: t.pgid, state: 'R', marker: t.marker });
  }
  return live;
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 1 || pid === process.pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // ESRCH: already gone; EPERM: not ours (a reused pid) — nothing to do either way.
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (pgid <= 1 || pgid === process.pid) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export interface TerminateOptions {
  /** How long to wait after SIGTERM before SIGKILL. 0 or `force` kills at once. */
  graceMs: number;
  force?: boolean;
  /** After SIGKILL, how long to keep confirming before giving up (a process in D state, say). */
  killWaitMs?: number;
  scanner?: ProcScanner;
  /** Start on the next event-loop turn, so whatever the caller does next (a restart's spawn) goes first. */
  defer?: boolean;
}

export interface TerminateResult {
  /** Whether SIGKILL had to be sent. */
  killed: boolean;
  /** Pids still alive when we gave up confirming (normally empty). */
  remaining: number[];
}

export interface Termination {
  readonly done: Promise<TerminateResult>;
  /** Skip the rest of the grace period: SIGKILL now (a forced stop during a graceful one). */
  escalate(): void;
}

const POLL_FIRST_MS = 5;
const POLL_MAX_MS = 100;

/**
 * End every process of the targets: SIGTERM to each group and each marked process, poll /proc until
 * none is left or the grace period ends, then SIGKILL and poll again (bounded). The polling is a short
 * bounded loop that only runs during a stop; an idle daemon never polls.
 */
export function terminate(targets: readonly RunTarget[], opts: TerminateOptions): Termination {
  const scanner = opts.scanner ?? sharedScanner;
  let escalated = opts.force === true || opts.graceMs <= 0;
  let wake: (() => void) | null = null;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
    });

  /** When each `signalVia` helper last ran, per group and signal. */
  const viaSent = new Map<string, number>();

  /** Signal everything of the targets; returns the live processes seen before signalling. */
  const signalAll = async (signal: NodeJS.Signals): Promise<ProcEntry[]> => {
    if (!HAS_PROC) {
      // No /proc: the group is all we can reach. kill(-pgid, 0) tells whether any member is left.
      const alive = targets.filter((t) => signalGroup(t.pgid, 0));
      for (const t of alive) signalGroup(t.pgid, signal);
      return alive.map((t) => ({ pid: t.pgid, pgid: t.pgid, state: 'R', marker: t.marker }));
    }
    const live = liveMembers(await scanner.scan(), targets);
    const groups = new Set(live.map((e) => e.pgid));
    // The group first, in one kill(2), so a member forking right now cannot slip past.
    for (const t of targets) {
      if (!groups.has(t.pgid)) continue;
      signalGroup(t.pgid, signal);
      if (t.signalVia !== undefined) {
        const key = `${t.pgid}:${signal}`;
        const last = viaSent.get(key);
        if (last === undefined || Date.now() - last >= SIGNAL_VIA_INTERVAL_MS) {
          viaSent.set(key, Date.now());
          t.signalVia(t.pgid, signal);
        }
      }
    }
    for (const e of live) signalPid(e.pid, signal);
    return live;
  };

  const waitGone = async (deadline: number, stopOnEscalate: boolean): Promise<ProcEntry[]> => {
    let interval = POLL_FIRST_MS;
    while (true) {
      const live = HAS_PROC
        ? liveMembers(await scanner.scan(), targets)
        : targets.filter((t) => signalGroup(t.pgid, 0)).map((t) => ({ pid: t.pgid, pgid: t.pgid, state: 'R', marker: t.marker }));
      if (live.length === 0) return [];
      const left = deadline - Date.now();
      if (left <= 0 || (stopOnEscalate && escalated)) return live;
      await sleep(Math.min(interval, left));
      interval = Math.min(POLL_MAX_MS, Math.ceil(interval * 1.5));
    }
  };

  const run = async (): Promise<TerminateResult> => {
    if (opts.defer === true) await new Promise((resolve) => setImmediate(resolve));
    if (!escalated) {
      const seen = await signalAll('SIGTERM');
      if (seen.length === 0) return { killed: false, remaining: [] };
      const left = await waitGone(Date.now() + opts.graceMs, true);
      if (left.length === 0) return { killed: false, remaining: [] };
    }
    escalated = true;
    // Kill, look again, kill what is left (children forked between a scan and its kill), bounded.
    const deadline = Date.now() + (opts.killWaitMs ?? 5000);
    let interval = POLL_FIRST_MS;
    let killed = false;
    while (true) {
      const live = await signalAll('SIGKILL');
      if (live.length === 0) return { killed, remaining: [] };
      killed = true;
      if (Date.now() >= deadline) return { killed, remaining: live.map((e) => e.pid) };
      await sleep(interval);
      interval = Math.min(POLL_MAX_MS, Math.ceil(interval * 1.5));
    }
  };

  return {
    done: run(),
    escalate() {
      escalated = true;
      wake?.();
    },
  };
}
