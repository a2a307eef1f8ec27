// Crash recovery: what a daemon killed with SIGKILL (or OOM-killed, or lost to a power cut of its
// cgroup) left behind. Its state file names every run that may still have processes and every service
// that was meant to run. At the next start, before any service is started, each recorded process is
// checked against /proc (the same pid AND the same start time, or the run's marker in its environment,
// so a reused pid is never touched), its whole run is found (its process group, only when the group
// leader is proven to be ours, plus every process carrying the run's ADI_SERVICE_ID marker), and the
// run is ended the way a stop ends it: SIGTERM, the service's stop_timeout, SIGKILL, confirmed.
//
// Why stop and start again rather than re-adopt: the orphans' stdout/stderr pipes died with the old
// daemon (their next write gets SIGPIPE/EPIPE), and a process that is not our child gives no exit
// event, so an adopted process could be neither logged nor supervised. See docs/reliability.md.

import { checkName } from '../core/paths.js';
import type { Logger } from '../core/logger.js';
import { SERVICE_CONFIG_SCHEMA, validateServiceConfig } from '../protocol/config-schema.js';
import {
  DAEMON_INSTANCE_ENV,
  HAS_PROC,
  liveMembers,
  scanProcessesSync,
  sharedScanner,
  terminate,
  type ProcEntry,
  type ProcScanner,
  type RunTarget,
  type Termination,
} from '../system/process-group.js';
import { readProcStatSync } from '../system/proc.js';
import { readStateFile, type StateEntry, type WantedService } from './state-file.js';

/**
 * The pgid of a target whose recorded group cannot be proven to be the run's (its leader is gone or is
 * another process now): no process has a negative pgid, so only the marker finds its members.
 */
const NO_GROUP = -1;

/** A marker is what newRunId() makes (32 hex digits); anything else in the file is not trusted. */
const MARKER_PATTERN = /^[0-9a-f]{16,128}$/;

export interface RecoveryOptions {
  stateFile: string;
  log: Logger;
  scanner?: ProcScanner | undefined;
  /** Called when the previous run's processes of a service are all gone (the state file shrinks). */
  settled?: () => void;
  /** After SIGKILL, how long to keep confirming (default: terminate's). */
  killWaitMs?: number;
  /**
   * The ADI_DAEMON_INSTANCE value this daemon's runs carry: every live process carrying it is a leftover
   * (nothing of this daemon runs yet), recorded or not. Absent: only the state file is trusted.
   */
  instance?: string;
}

/** How one recorded process was judged. */
export type LeaderVerdict = 'same' | 'gone' | 'reused' | 'unknown';

export interface RecoveredRun {
  entry: StateEntry;
  verdict: LeaderVerdict;
  target: RunTarget;
}

export class Recovery {
  /** Services that were meant to run when the previous daemon died, by name (validated). */
  readonly wanted: ReadonlyMap<string, WantedService>;
  /** The pid of the daemon that wrote the file, or null without a file. */
  readonly previousDaemon: number | null;
  /** Every recorded run with the verdict on its leader (for logs and tests). */
  readonly runs: readonly RecoveredRun[];
  /** Resolves when every termination has ended. */
  readonly done: Promise<void>;
  private readonly terminations = new Map<string, Termination>();
  private readonly pendingEntries = new Map<string, StateEntry[]>();

  private constructor(
    previousDaemon: number | null,
    wanted: Map<string, WantedService>,
    runs: RecoveredRun[],
    terminations: Map<string, { termination: Termination; entries: StateEntry[] }>,
    opts: RecoveryOptions,
  ) {
    this.previousDaemon = previousDaemon;
    this.wanted = wanted;
    this.runs = runs;
    const all: Promise<unknown>[] = [];
    for (const [name, { termination, entries }] of terminations) {
      this.terminations.set(name, termination);
      this.pendingEntries.set(name, entries);
      all.push(
        termination.done
          .then(
            (result) => {
              if (result.remaining.length > 0) {
                // They stay in the state file, for the next start to try again.
                opts.log.warn(
                  `recovery: service ${name}: processes ${result.remaining.join(', ')} of the previous daemon survived SIGKILL (uninterruptible?)`,
                );
                return;
              }
              this.pendingEntries.delete(name);
              opts.log.info(
                `recovery: service ${name}: the previous daemon's processes are gone${result.killed ? ' (SIGKILL was needed)' : ''}`,
              );
            },
            (err: unknown) =>
              opts.log.error(`recovery: service ${name}: ${err instanceof Error ? err.message : String(err)}`),
          )
          .finally(() => opts.settled?.()),
      );
    }
    this.done = Promise.all(all).then(() => undefined);
  }

  /** An empty recovery (no state file, or a clean previous shutdown). */
  static none(): Recovery {
    return new Recovery(null, new Map(), [], new Map(), { stateFile: '', log: { info() {}, warn() {}, error() {} } });
  }

  /**
   * Read the previous run's state file, judge every recorded process, and begin ending the live ones
   * (in parallel, one termination per service). Synchronous up to the first signal: nothing of the new
   * daemon runs before the old processes have had their SIGTERM.
   */
  static begin(opts: RecoveryOptions): Recovery {
    const previous = readStateFile(opts.stateFile, (line) =>
      opts.log.warn(
        `recovery: ${opts.stateFile}: skipped a damaged journal line ${line} (a write torn by a crash or a full disk)`,
      ),
    );
    const previousDaemon = previous !== null && Number.isInteger(previous.daemon_pid) ? previous.daemon_pid : null;
    const wanted = parseWanted(previous?.wanted, opts.log);
    const entries = (previous?.services ?? []).filter((e) => validEntry(e, opts.log));

    const runs: RecoveredRun[] = [];
    const terminations = new Map<string, { termination: Termination; entries: StateEntry[] }>();
    if (!HAS_PROC) {
      if (entries.length === 0) return new Recovery(previousDaemon, wanted, [], new Map(), opts);
      // Without /proc no recorded pid can be proven to be the same process: none is touched.
      opts.log.warn(
        `recovery: cannot verify the ${entries.length} processes the previous daemon recorded on this platform; they are left alone (pids ${entries.map((e) => e.pid).join(', ')})`,
      );
      return new Recovery(
        previousDaemon,
        wanted,
        entries.map((entry) => ({ entry, verdict: 'unknown', target: { pgid: NO_GROUP, marker: entry.marker } })),
        new Map(),
        opts,
      );
    }

    const procs = scanProcessesSync();
    // A scan cached earlier in this turn may predate processes this one sees: terminate() must not use it.
    (opts.scanner ?? sharedScanner).invalidate();
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    for (const entry of entries) runs.push(judge(entry, byPid));
    if (opts.instance !== undefined) {
      const unrecorded = unrecordedRuns(procs, opts.instance, entries, wanted);
      if (unrecorded.length > 0) {
        opts.log.warn(
          `recovery: ${unrecorded.length} run(s) of the previous daemon were not in the state file (it died before recording them); found by ${DAEMON_INSTANCE_ENV} in /proc: ${unrecorded.map((r) => `${r.entry.name} pid ${r.entry.pid}`).join(', ')}`,
        );
        runs.push(...unrecorded);
      }
    }
    if (runs.length === 0) return new Recovery(previousDaemon, wanted, [], new Map(), opts);

    const byName = new Map<string, RecoveredRun[]>();
    for (const run of runs) {
      if (run.verdict === 'reused') {
        opts.log.info(
          `recovery: pid ${run.entry.pid} recorded for service ${run.entry.name} is now another process (start time differs); it is not touched`,
        );
      }
      const list = byName.get(run.entry.name) ?? [];
      list.push(run);
      byName.set(run.entry.name, list);
    }
    let found = 0;
    for (const [name, list] of byName) {
      const targets = list.map((r) => r.target);
      const live = liveMembers(procs, targets);
      if (live.length === 0) continue;
      found += live.length;
      const graceSecs = Math.max(...list.map((r) => graceOf(r.entry)));
      opts.log.warn(
        `recovery: service ${name}: ending ${live.length} process(es) left by the previous daemon (pids ${live.map((p) => p.pid).join(', ')}; SIGTERM, SIGKILL after ${graceSecs}s)`,
      );
      const termination = terminate(targets, {
        graceMs: Math.round(graceSecs * 1000),
        scanner: opts.scanner,
        killWaitMs: opts.killWaitMs,
      });
      terminations.set(name, { termination, entries: list.map((r) => r.entry) });
    }
    if (found > 0 || wanted.size > 0) {
      opts.log.warn(
        `recovery: the previous daemon${previousDaemon !== null ? ` (pid ${previousDaemon})` : ''} did not shut down cleanly: ${found} of its service processes were still running; ${wanted.size} service(s) it ran will be started again`,
      );
    }
    return new Recovery(previousDaemon, wanted, runs, terminations, opts);
  }

  /** The termination of the previous daemon's processes of a service, if any were found. */
  termination(name: string): Termination | undefined {
    return this.terminations.get(name);
  }

  /** Names of the services whose previous processes are being ended. */
  names(): string[] {
    return [...this.terminations.keys()];
  }

  /** Recorded runs whose processes may still be alive: they stay in the state file until gone. */
  pending(): StateEntry[] {
    return [...this.pendingEntries.values()].flat();
  }
}

/** Decide whether the recorded leader is still the recorded process, and what may be signalled. */
export function judge(entry: StateEntry, byPid: ReadonlyMap<number, ProcEntry>): RecoveredRun {
  const stat = readProcStatSync(entry.pid);
  if (stat === null) return { entry, verdict: 'gone', target: { pgid: NO_GROUP, marker: entry.marker } };
  // Either proof is enough: a pid with the recorded start time cannot have been reused, and the
  // marker is a random 128-bit value only the run's own processes inherit.
  const sameStart = entry.starttime !== null && stat.starttime === entry.starttime;
  const sameMarker = byPid.get(entry.pid)?.marker === entry.marker;
  if (!sameStart && !sameMarker) return { entry, verdict: 'reused', target: { pgid: NO_GROUP, marker: entry.marker } };
  // The group is trusted only as the proven leader's own: while the leader lives (even as a zombie),
  // no other process can create a group of that number.
  return {
    entry,
    verdict: 'same',
    target: { pgid: entry.pgid === entry.pid ? entry.pgid : NO_GROUP, marker: entry.marker },
  };
}

/**
 * Runs of this data dir that the state file does not name: a daemon killed between a spawn and its
 * next state write (or unable to write it: a full disk) leaves them. Each is a set of live processes
 * carrying our ADI_DAEMON_INSTANCE and one run marker; its leader is the member that leads its own group
 * (the spawned process, unless it died), and its group counts only then.
 */
export function unrecordedRuns(
  procs: readonly ProcEntry[],
  instance: string,
  recorded: readonly StateEntry[],
  wanted: ReadonlyMap<string, WantedService>,
): RecoveredRun[] {
  const known = new Set(recorded.map((e) => e.marker));
  const byMarker = new Map<string, ProcEntry[]>();
  for (const p of procs) {
    if (
      p.state === 'Z' ||
      p.instance !== instance ||
      p.marker === null ||
      known.has(p.marker) ||
      !MARKER_PATTERN.test(p.marker)
    )
      continue;
    const list = byMarker.get(p.marker) ?? [];
    list.push(p);
    byMarker.set(p.marker, list);
  }
  const out: RecoveredRun[] = [];
  for (const [marker, members] of byMarker) {
    const leader = members.find((p) => p.pid === p.pgid) ?? members.reduce((a, b) => (a.pid < b.pid ? a : b));
    const name = typeof leader.name === 'string' && isName(leader.name) ? leader.name : UNNAMED;
    const entry: StateEntry = {
      name,
      pid: leader.pid,
      pgid: leader.pgid,
      marker,
      starttime: readProcStatSync(leader.pid)?.starttime ?? null,
      started_at: Date.now(),
      stop_timeout: graceFor(name, recorded, wanted),
    };
    out.push({ entry, verdict: 'same', target: { pgid: leader.pid === leader.pgid ? leader.pgid : NO_GROUP, marker } });
  }
  return out;
}

const STOP_TIMEOUT = SERVICE_CONFIG_SCHEMA.stop_timeout;

/** The name an unrecorded run whose ADI_SERVICE_NAME is missing or odd is tracked under. */
const UNNAMED = 'unnamed-leftover';

/** The stop_timeout for an unrecorded run: its service's, as recorded for another run or with its ad-hoc definition. */
function graceFor(name: string, recorded: readonly StateEntry[], wanted: ReadonlyMap<string, WantedService>): number {
  const run = recorded.find((e) => e.name === name && typeof e.stop_timeout === 'number');
  if (run !== undefined) return graceOf(run);
  return wanted.get(name)?.config?.stop_timeout ?? STOP_TIMEOUT.default;
}

function graceOf(entry: StateEntry): number {
  const t = entry.stop_timeout;
  return typeof t === 'number' && Number.isFinite(t) && t >= STOP_TIMEOUT.min && t <= STOP_TIMEOUT.max
    ? t
    : STOP_TIMEOUT.default;
}

/** The file is ours (0600 in a 0700 directory), but a damaged one must not point signals anywhere odd. */
function validEntry(e: unknown, log: Logger): e is StateEntry {
  const r = e as Partial<StateEntry> | null;
  const ok =
    typeof r === 'object' &&
    r !== null &&
    typeof r.name === 'string' &&
    isName(r.name) &&
    Number.isSafeInteger(r.pid) &&
    (r.pid as number) > 1 &&
    Number.isSafeInteger(r.pgid) &&
    typeof r.marker === 'string' &&
    MARKER_PATTERN.test(r.marker) &&
    (r.starttime === null || (typeof r.starttime === 'number' && Number.isFinite(r.starttime)));
  if (!ok) log.warn(`recovery: ignoring a malformed state file entry: ${JSON.stringify(e)?.slice(0, 200)}`);
  return ok;
}

function isName(name: string): boolean {
  try {
    checkName('service', name);
    return true;
  } catch {
    return false;
  }
}

function parseWanted(raw: unknown, log: Logger): Map<string, WantedService> {
  const out = new Map<string, WantedService>();
  if (!Array.isArray(raw)) return out;
  for (const item of raw as unknown[]) {
    const w = item as Partial<WantedService> | null;
    if (typeof w !== 'object' || w === null || typeof w.name !== 'string' || !isName(w.name)) {
      log.warn(`recovery: ignoring a malformed wanted service: ${JSON.stringify(item)?.slice(0, 200)}`);
      continue;
    }
    if (w.source === 'file' || w.source === 'plugin') {
      out.set(w.name, { name: w.name, source: w.source });
      continue;
    }
    if (w.source !== 'adhoc') {
      log.warn(`recovery: service ${w.name}: unknown source ${JSON.stringify(w.source)}; not started again`);
      continue;
    }
    // An ad-hoc definition passes the same validation as one arriving on the wire.
    const result = validateServiceConfig(w.config);
    if (result.config === null) {
      log.warn(`recovery: ad-hoc service ${w.name}: its recorded definition is invalid; not started again`);
      continue;
    }
    out.set(w.name, { name: w.name, source: 'adhoc', config: result.config });
  }
  return out;
}
