// Finding and ending every process of a service run: its process group (the service runs as a session
// leader, see launch.ts) plus, on Linux, every process whose environment carries the run's marker, which
// catches children that called setsid() and left the group (double-forked daemons) — the PM2 and
// supervisord "orphans after stop" bugs. Stop is systemd's: SIGTERM, wait, SIGKILL, and confirm.

import { HAS_PROC, processTable } from './proc.js';

export { DAEMON_INSTANCE_ENV, HAS_PROC, SERVICE_ID_ENV, SERVICE_NAME_ENV, readProcStat } from './proc.js';

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

/**
 * One pass over the process table, reading every environment afresh: what a process carries now
 * decides whether it is swept.
 */
export function scanProcessesSync(): ProcEntry[] {
  const out: ProcEntry[] = [];
  processTable.forEach('fresh', (pid, { pgid, state }, { marker, instance, name }) => {
    if (instance === null) out.push({ pid, pgid, state, marker });
    else out.push({ pid, pgid, state, marker, instance, name });
  });
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
  const live = entries.filter(
    (e) => e.state !== 'Z' && (pgids.has(e.pgid) || (e.marker !== null && markers.has(e.marker))),
  );
  for (const t of targets) {
    if (t.leaderAlive?.() === true && !live.some((e) => e.pid === t.pgid))
      live.push({ pid: t.pgid, pgid: t.pgid, state: 'R', marker: t.marker });
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
  killWaitMs?: number | undefined;
  scanner?: ProcScanner | undefined;
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
        : targets
            .filter((t) => signalGroup(t.pgid, 0))
            .map((t) => ({ pid: t.pgid, pgid: t.pgid, state: 'R', marker: t.marker }));
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
