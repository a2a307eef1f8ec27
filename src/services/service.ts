// One supervised service: its definition, its current run (process), and the driving of its state
// machine (lifecycle.ts: the states, the transitions and what each means). Processes and time come
// through a Spawner and a Clock (runtime.ts), so the machine is tested with fakes too.
//
// User operations (start, stop, restart, redefine) run one at a time through a queue, so a stop never
// races a start; automatic restarts go through the same queue. Exits are seen through the child's
// 'exit' event at once. A forced stop during a graceful one skips the rest of the grace period.

import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { AdiError } from '../core/errors.js';
import { ADMIN, pluginIdentity } from '../core/identity.js';
import { claimLog } from '../logs/owner.js';
import { ServiceLog, type ServiceLogOptions } from '../logs/service-log.js';
import type { ServiceInfo, ServiceState } from '../protocol/types.js';
import type { Logger } from '../core/logger.js';
import { processKey } from './config.js';
import { ProbeLoop, type ProbeContext, type ProbeResult } from './health.js';
import { buildLaunch, newRunId, pluginOf, type Launch } from './launch.js';
import type { ProcScanner, RunTarget, Termination } from '../system/process-group.js';
import type { ServiceDefinition } from './registry.js';
import { isActiveState, next, restartDue, type ExitOutcome, type LifeEvent } from './lifecycle.js';
import { RestartPolicy } from './restart-policy.js';
import { realClock, realSpawner, type Clock, type RunProcess, type Spawner } from './runtime.js';
import type { ServicePrivilege } from '../system/run-as.js';
import type { StateEntry } from './state-file.js';

/** What a service needs from its manager. */
export interface ServiceHost {
  readonly log: Logger;
  readonly logsDir: string;
  readonly baseEnv: NodeJS.ProcessEnv;
  readonly home: string;
  readonly scanner?: ProcScanner;
  /** Who services run as (separation, plugin tokens, audit); absent: the daemon's user. */
  readonly privilege?: ServicePrivilege;
  /** What every run is marked with (ADI_DAEMON_INSTANCE, see recovery.ts); absent: unmarked. */
  readonly instance?: string;
  /** Why a new run may not start now (the daemon keeps descriptors for its admin), or null. */
  spawnRefusal?(): string | null;
  /** The set of possibly-alive runs changed (state file). */
  runsChanged(): void;
  /** False once the manager shuts down: no automatic restarts then. */
  accepting(): boolean;
  /** Starts and ends processes; absent: real child processes. */
  readonly spawner?: Spawner;
  /** Absent: the real clock. */
  readonly clock?: Clock;
}

/** A ready line longer than this without '\n' is not waited for further (bounded buffer). */
const READY_LINE_MAX = 4096;
/** After SIGKILL the exit event follows within ms; this bounds the wait in case it never comes. */
const EXIT_EVENT_WAIT_MS = 2000;
/** The grace handed to a termination whose SIGKILL our clock decides (escalate()): longer than any stop_timeout. */
const UNTIL_ESCALATED_MS = 2 ** 31 - 1;

interface Run {
  /** The ADI_SERVICE_ID marker. */
  id: string;
  child: RunProcess;
  pid: number;
  pgid: number;
  startedAt: number;
  starttime: number | null;
  launch: Launch;
  exited: boolean;
  exitEvent: Promise<void>;
  /** Set when the daemon ends the run for a failed liveness check. */
  killReason: string | null;
  killing: Termination | null;
  probes: ProbeLoop[];
  /** Readiness conditions still to pass (notify line, readiness probe). */
  readyPending: number;
}

interface Lingering {
  run: Run;
  termination: Termination;
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string') {
    const why: Record<string, string> = {
      ENOENT: 'no such file or directory',
      EACCES: 'permission denied',
      ENOTDIR: 'not a directory',
      EISDIR: 'is a directory',
      ENOEXEC: 'not an executable format',
      E2BIG: 'argument list too long',
      EMFILE: 'too many open files',
      EAGAIN: 'resource temporarily unavailable',
    };
    return why[e.code] !== undefined ? `${e.code} (${why[e.code]})` : e.code;
  }
  return err instanceof Error ? err.message : String(err);
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`;
}

function logOptions(def: ServiceDefinition, onError: (err: Error) => void): ServiceLogOptions {
  const opts: ServiceLogOptions = { onError };
  if (def.config.log_max_bytes !== null) opts.maxBytes = def.config.log_max_bytes;
  if (def.config.log_max_files !== null) opts.maxFiles = def.config.log_max_files;
  return opts;
}

export class Service {
  readonly name: string;
  private definition: ServiceDefinition;
  /** Which registry source the definition came from (null for ad-hoc). */
  sourceIndex: number | null;
  private serviceLog: ServiceLog;
  /** Output pipes of runs still open: the log's files stay open while any is. */
  private openPipes = 0;
  private releaseScheduled = false;
  private current: ServiceState = 'stopped';
  private run: Run | null = null;
  private readonly lingering = new Map<string, Lingering>();
  private restartCount = 0;
  private lastError: string | null = null;
  private exitCode: number | null = null;
  private exitSignal: string | null = null;
  private readonly policy: RestartPolicy;
  private backoffTimer: unknown = null;
  /** The user's intent: up after a user start, down after a user stop. Automatic restarts need it up. */
  private wantUp = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** The termination of an in-flight user stop (a forced stop escalates it). */
  private stopping: Termination | null = null;
  /** A restart (user or redefine) is between its stop and its start: still wanted up for the state file. */
  private restarting = false;
  private closed = false;
  private logErrorReported = false;
  private readonly spawner: Spawner;
  private readonly clock: Clock;

  constructor(
    def: ServiceDefinition,
    sourceIndex: number | null,
    private readonly host: ServiceHost,
  ) {
    this.spawner = host.spawner ?? realSpawner;
    this.clock = host.clock ?? realClock;
    this.name = def.name;
    this.definition = def;
    this.sourceIndex = sourceIndex;
    this.policy = new RestartPolicy(def.config.max_restarts);
    this.serviceLog = this.openLog(def);
  }

  get def(): ServiceDefinition {
    return this.definition;
  }

  get state(): ServiceState {
    return this.current;
  }

  /** A process is (or is about to be) running for it, or a restart is pending. */
  isActive(): boolean {
    return isActiveState(this.current);
  }

  get log(): ServiceLog {
    return this.serviceLog;
  }

  info(now = this.clock.now()): ServiceInfo {
    const run = this.run !== null && !this.run.exited ? this.run : null;
    return {
      name: this.name,
      state: this.current,
      pid: run?.pid ?? null,
      uptime_secs: run !== null ? Math.max(0, Math.floor((now - run.startedAt) / 1000)) : null,
      restarts: this.restartCount,
      // A failing log (full disk, replaced directory) is shown too: the service runs, its output is lost.
      last_error: this.lastError ?? this.logErrorText(),
      exit_code: this.exitCode,
      exit_signal: this.exitSignal,
      source: this.definition.source,
      // Resource sampling is another issue.
      cpu_percent: null,
      memory_bytes: null,
    };
  }

  /** Runs that may still have processes: the current one and those being swept. For the state file. */
  stateEntries(): StateEntry[] {
    const runs: Run[] = [];
    if (this.run !== null && !this.run.exited) runs.push(this.run);
    for (const l of this.lingering.values()) if (l.run !== this.run) runs.push(l.run);
    return runs.map((r) => ({
      name: this.name,
      pid: r.pid,
      pgid: r.pgid,
      marker: r.id,
      starttime: r.starttime,
      started_at: r.startedAt,
    }));
  }

  /**
   * Whether the service is meant to be running (crash recovery starts it again): the user wants it up
   * and it runs, starts, waits for a restart, or is being restarted. Not a service that finished,
   * failed, gave up, or is being stopped.
   */
  wanted(): boolean {
    return this.restarting || (this.wantUp && this.isActive());
  }

  /**
   * Crash recovery: `termination` is ending the processes the previous daemon left of this service.
   * Every later operation waits for it (a new run must not race the old one for its port or files),
   * the service shows as stopping meanwhile, and a forced stop cuts the grace period short.
   */
  awaitPrevious(termination: Termination): void {
    this.apply({ type: 'previous' });
    this.enqueue(async () => {
      this.stopping = termination;
      try {
        await termination.done;
      } finally {
        this.stopping = null;
        this.apply({ type: 'previous-gone' });
      }
    }).catch(() => undefined);
  }

  // -------------------------------------------------------------------------------------------------
  // User operations

  /** Start by a user: resets the restart count and the limit; a running service is left as it is. */
  start(): Promise<ServiceInfo> {
    return this.enqueue(() => this.doStart());
  }

  stop(force: boolean): Promise<ServiceInfo> {
    // Decided at once, not in the queue: a stop wins over a pending automatic restart, and a forced
    // stop cuts a graceful one short.
    this.wantUp = false;
    this.clearBackoff();
    // The state file must stop calling it wanted now, not once the (maybe long) stop is over.
    this.host.runsChanged();
    if (force) {
      this.stopping?.escalate();
      this.run?.killing?.escalate();
      for (const l of this.lingering.values()) l.termination.escalate();
    }
    return this.enqueue(() => this.doStop(force));
  }

  restart(): Promise<ServiceInfo> {
    this.clearBackoff();
    return this.enqueue(async () => {
      this.restarting = true;
      try {
        await this.doStop(false);
        return await this.doStart();
      } finally {
        this.restarting = false;
        this.host.runsChanged();
      }
    });
  }

  /**
   * Take a new definition (reload, or an ad-hoc StartService replacing a stopped one). A running
   * service whose config changed is restarted with it; returns whether it was.
   */
  redefine(def: ServiceDefinition, sourceIndex: number | null): Promise<boolean> {
    return this.enqueue(async () => {
      // A name that passes to another owner gets a log of its own (logs/owner.ts), between a stop and a
      // start: its running process, if any, writes to the old owner's log until it is stopped.
      const ownerChanged = logOwner(def) !== logOwner(this.definition);
      const configChanged = ownerChanged || processKey(def.config) !== processKey(this.definition.config);
      const logChanged =
        def.config.log_max_bytes !== this.definition.config.log_max_bytes ||
        def.config.log_max_files !== this.definition.config.log_max_files;
      const wasUp =
        configChanged &&
        this.wantUp &&
        (this.current === 'starting' || this.current === 'running' || this.current === 'backoff');
      if (wasUp) {
        this.restarting = true;
        try {
          await this.doStop(false);
        } catch (err) {
          this.restarting = false;
          throw err;
        }
      }
      if (ownerChanged) {
        this.serviceLog.retire();
        this.serviceLog = this.openLog(def);
      }
      this.definition = def;
      this.sourceIndex = sourceIndex;
      // The same log object: its followers keep following under the new rotation settings.
      if (logChanged && !ownerChanged) this.serviceLog.configure(logOptions(def, () => undefined));
      if (wasUp) {
        this.serviceLog.note('definition changed: restarting');
        try {
          await this.doStart();
        } finally {
          this.restarting = false;
          this.host.runsChanged();
        }
      }
      return wasUp;
    });
  }

  /** Stop (graceful) and release the log; the service object is not used afterwards. */
  async remove(): Promise<void> {
    await this.stop(false);
    this.close();
  }

  close(): void {
    this.closed = true;
    this.clearBackoff();
    this.serviceLog.close();
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private clearBackoff(): void {
    if (this.backoffTimer !== null) {
      this.clock.clearTimer(this.backoffTimer);
      this.backoffTimer = null;
    }
  }

  private async doStart(): Promise<ServiceInfo> {
    if (this.closed || !this.host.accepting())
      throw new AdiError(
        'SHUTTING_DOWN',
        `Service "${this.name}" cannot start: it is being removed or the daemon is shutting down.`,
      );
    this.wantUp = true;
    this.clearBackoff();
    if (this.run !== null && !this.run.exited) return this.info();
    this.restartCount = 0;
    this.policy.reset(this.definition.config.max_restarts);
    this.lastError = null;
    await this.spawnRun(false);
    return this.info();
  }

  private async doStop(force: boolean): Promise<ServiceInfo> {
    this.wantUp = false;
    this.clearBackoff();
    const run = this.run !== null && !this.run.exited ? this.run : null;
    const targets: RunTarget[] = [];
    if (run !== null) targets.push(runTarget(run));
    for (const l of this.lingering.values()) targets.push(runTarget(l.run));

    if (run === null && targets.length === 0) {
      this.apply({ type: 'stopped' });
      return this.info();
    }

    if (run !== null) {
      this.apply({ type: 'stop' });
      this.stopProbes(run);
      this.serviceLog.note(
        force
          ? `stopping pid ${run.pid} (SIGKILL)`
          : `stopping pid ${run.pid} (SIGTERM, SIGKILL after ${this.definition.config.stop_timeout}s)`,
      );
    }
    const termination = this.endRuns(targets, force);
    this.stopping = termination;
    let result;
    try {
      result = await termination.done;
    } finally {
      this.stopping = null;
    }
    // Everything is dead now; the other terminations (liveness kill, leftover sweeps) end at once.
    run?.killing?.escalate();
    for (const l of this.lingering.values()) l.termination.escalate();
    if (run !== null) await this.within(run.exitEvent, EXIT_EVENT_WAIT_MS);
    await Promise.all([...this.lingering.values()].map((l) => l.termination.done.catch(() => undefined)));

    if (result.remaining.length > 0) {
      this.host.log.warn(
        `service ${this.name}: processes ${result.remaining.join(', ')} survived SIGKILL (uninterruptible?)`,
      );
    }
    if (run !== null) {
      this.serviceLog.note(result.killed ? 'stopped (SIGKILL was needed)' : 'stopped');
      this.host.log.info(`service ${this.name} stopped${result.killed ? ' (SIGKILL was needed)' : ''}`);
    }
    this.apply({ type: 'stopped' });
    this.host.runsChanged();
    return this.info();
  }

  // -------------------------------------------------------------------------------------------------
  // Runs

  private fail(message: string): AdiError {
    this.apply({ type: 'spawn-failed' });
    this.lastError = message;
    this.serviceLog.note(message);
    this.host.log.warn(`service ${this.name}: ${message}`);
    return new AdiError('SPAWN_FAILED', `Service "${this.name}": ${message}`);
  }

  /** Spawn a run; resolves once the process exists ('spawn'), rejects with SPAWN_FAILED otherwise. */
  private async spawnRun(automatic: boolean): Promise<void> {
    const config = this.definition.config;
    const refusal = this.host.spawnRefusal?.() ?? null;
    if (refusal !== null) throw this.fail(`cannot start: ${refusal}`);
    const runId = newRunId();
    let launch: Launch;
    try {
      launch = buildLaunch(this.name, config, {
        baseEnv: this.host.baseEnv,
        home: this.host.home,
        runId,
        def: this.definition,
        ...(this.host.privilege !== undefined ? { privilege: this.host.privilege } : {}),
        ...(this.host.instance !== undefined ? { instance: this.host.instance } : {}),
      });
    } catch (err) {
      throw this.fail(`cannot start: ${err instanceof Error ? err.message : String(err)}`);
    }
    const shown = JSON.stringify(launch.command[0]);
    const privileged = launch.runAs.mode === 'root-chain';
    const auditFailure = (message: string): void => {
      if (privileged)
        this.host.privilege?.auditPrivileged({
          service: this.name,
          argv: launch.command,
          result: { error: 'SPAWN_FAILED', message },
        });
    };

    // Node reports a missing cwd as ENOENT of the command, which sends people looking for the wrong
    // file: check the directory first and say which it is.
    try {
      const st = fs.statSync(launch.cwd);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (err) {
      auditFailure(`working directory ${launch.cwd}: ${errnoText(err)}`);
      throw this.fail(`cannot start ${shown}: working directory ${launch.cwd}: ${errnoText(err)}`);
    }

    let child: RunProcess;
    try {
      child = await this.spawner.start(launch);
    } catch (err) {
      auditFailure(errnoText(err));
      throw this.fail(`cannot start ${shown}: ${errnoText(err)}`);
    }
    const pid = child.pid;
    this.host.scanner?.invalidate();
    if (privileged) this.host.privilege?.auditPrivileged({ service: this.name, argv: launch.command, result: { pid } });

    let exitResolve: () => void = () => undefined;
    const exitEvent = new Promise<void>((resolve) => {
      exitResolve = resolve;
    });
    const run: Run = {
      id: runId,
      child,
      pid,
      // detached: the child called setsid(), so it leads its own group.
      pgid: pid,
      startedAt: this.clock.now(),
      starttime: null,
      launch,
      exited: false,
      exitEvent,
      killReason: null,
      killing: null,
      probes: [],
      readyPending: (config.ready_notify ? 1 : 0) + (config.readiness !== null ? 1 : 0),
    };
    // exit_code / exit_signal keep describing the last run that ended, while this one runs.
    this.run = run;

    child.onError((err) => this.host.log.warn(`service ${this.name} (pid ${pid}): ${err.message}`));
    child.onExit((code, signal) => {
      exitResolve();
      this.onExit(run, code, signal);
    });
    this.pipeOutput(child.stdout, 'out');
    this.pipeOutput(child.stderr, 'err');

    this.apply({ type: 'spawned', readyPending: run.readyPending > 0 });
    const as = launch.runAs.mode === 'self' ? '' : ` as ${launch.runAs.user}`;
    this.serviceLog.note(
      `started pid ${pid}${as}${automatic ? ` (restart ${this.restartCount})` : ''}: ${launch.command.join(' ')}`,
    );
    this.host.runsChanged();
    void this.spawner.starttime(pid).then((starttime) => {
      if (starttime !== null && !run.exited) {
        run.starttime = starttime;
        this.host.runsChanged();
      }
    });

    if (config.ready_notify && launch.readyFd !== null) this.watchReadyFd(run, child.stream(launch.readyFd));
    if (config.readiness !== null) {
      const probe = new ProbeLoop('readiness', config.readiness, probeContext(launch), {
        onReady: () => this.readyStep(run, 'readiness check passed'),
      });
      run.probes.push(probe);
      probe.start();
    }
    if (run.readyPending === 0) this.startLiveness(run);
  }

  private pipeOutput(stream: Readable | null, which: 'out' | 'err'): void {
    if (stream === null) return;
    const log = this.serviceLog;
    this.openPipes++;
    let open = true;
    const ended = (): void => {
      if (!open) return;
      open = false;
      log.flushPartial(which);
      this.openPipes--;
      this.releaseLog();
    };
    stream.on('data', (chunk: Buffer) => log.write(which, chunk));
    stream.on('end', ended);
    stream.on('close', ended);
    stream.on('error', () => undefined);
  }

  /**
   * A service that is not running holds no fds: its log's files are closed once its pipes have ended
   * (after the notes written in the same turn as its state change). A later write reopens them.
   */
  private releaseLog(): void {
    if (this.releaseScheduled) return;
    this.releaseScheduled = true;
    setImmediate(() => {
      this.releaseScheduled = false;
      if (this.openPipes === 0 && !this.isActive()) this.serviceLog.close();
    });
  }

  private watchReadyFd(run: Run, stream: Readable | null): void {
    if (stream === null) return;
    let seen = 0;
    const done = (): void => {
      stream.removeAllListeners('data');
      stream.on('error', () => undefined);
      stream.destroy();
    };
    stream.on('error', () => undefined);
    stream.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (chunk.includes(0x0a)) {
        done();
        this.readyStep(run, 'ready (notified)');
      } else if (seen > READY_LINE_MAX) {
        done();
        this.serviceLog.note(`ready fd: more than ${READY_LINE_MAX} bytes without a newline; ignored`);
      }
    });
  }

  private readyStep(run: Run, what: string): void {
    if (this.run !== run || run.exited) return;
    run.readyPending--;
    this.serviceLog.note(what);
    if (run.readyPending > 0) return;
    this.apply({ type: 'ready' });
    this.startLiveness(run);
  }

  private startLiveness(run: Run): void {
    const check = this.definition.config.liveness;
    if (check === null) return;
    const probe = new ProbeLoop('liveness', check, probeContext(run.launch), {
      onUnhealthy: (result) => this.onUnhealthy(run, result),
    });
    run.probes.push(probe);
    probe.start();
  }

  private stopProbes(run: Run): void {
    for (const p of run.probes) p.stop();
    run.probes = [];
  }

  /** Failing liveness: end the run like a stop; its exit then goes through the restart policy. */
  private onUnhealthy(run: Run, result: ProbeResult): void {
    if (this.run !== run || run.exited || this.current === 'stopping') return;
    const reason = `liveness check failed: ${result.detail}`;
    run.killReason = reason;
    this.lastError = reason;
    this.serviceLog.note(`${reason}; stopping pid ${run.pid}`);
    this.host.log.warn(`service ${this.name}: ${reason}`);
    run.killing = this.endRuns([runTarget(run)], false);
    run.killing.done.catch(() => undefined);
  }

  private onExit(run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    run.exited = true;
    this.stopProbes(run);
    if (this.run !== run) return;
    this.exitCode = code;
    this.exitSignal = signal;
    const how = describeExit(code, signal);
    this.serviceLog.note(how);

    if (this.current === 'stopping') {
      // A user stop: doStop() ends it and sweeps.
      this.host.runsChanged();
      return;
    }

    // Whatever the main process left behind (its group, double-forked children) is ended now, in the
    // background, so the restart below is not delayed by it (systemd's KillMode=control-group).
    this.sweep(run);
    this.host.runsChanged();

    const reason = run.killReason ?? how;
    const outcome = this.exitOutcome(run, code);
    this.lastError = outcome.restart === 'no' && outcome.clean ? this.lastError : reason;
    if (outcome.restart === 'give-up')
      this.lastError = `${reason}; gave up after ${outcome.restartsInWindow} restarts in ${outcome.windowSecs}s`;
    this.apply({ type: 'exit', outcome });
    if (outcome.restart === 'no') {
      this.host.log.info(`service ${this.name} ${reason}; not restarted`);
    } else if (outcome.restart === 'give-up') {
      this.serviceLog.note(`gave up: ${this.lastError}`);
      this.host.log.warn(`service ${this.name} failed: ${this.lastError}`);
    }
  }

  /** What becomes of a run that exited unasked: the user's intent, restart_on_failure, the restart policy. */
  private exitOutcome(run: Run, code: number | null): ExitOutcome {
    // restart_on_failure restarts any exit the user did not ask for, code 0 included: a service is
    // meant to keep running (PM2 and systemd's Restart=always treat a clean exit the same way).
    if (!this.definition.config.restart_on_failure || !this.wantUp || this.closed || !this.host.accepting()) {
      return { restart: 'no', clean: code === 0 && run.killReason === null };
    }
    const now = this.clock.now();
    const decision = this.policy.onExit(now - run.startedAt, now);
    if (decision.action === 'give-up')
      return { restart: 'give-up', restartsInWindow: decision.restartsInWindow, windowSecs: decision.windowSecs };
    return { restart: 'after', delayMs: decision.delayMs };
  }

  /** Feed the state machine an event and carry out what it asks. */
  private apply(event: LifeEvent): void {
    const { state, effects } = next(this.current, event);
    this.setState(state);
    for (const effect of effects) {
      if (effect.delayMs === 0) {
        this.scheduleAutoRestart();
        continue;
      }
      this.serviceLog.note(`restarting in ${effect.delayMs}ms`);
      this.clearBackoff();
      this.backoffTimer = this.clock.setTimer(effect.delayMs, () => {
        this.backoffTimer = null;
        this.scheduleAutoRestart();
      });
    }
  }

  /**
   * End the processes of `targets`: SIGTERM, then SIGKILL once stop_timeout has passed on our clock (or
   * at once when forced). The termination polls until everything is gone.
   */
  private endRuns(targets: readonly RunTarget[], force: boolean, defer = false): Termination {
    const grace = Math.round(this.definition.config.stop_timeout * 1000);
    const now = force || grace <= 0;
    const termination = this.spawner.stop(targets, {
      graceMs: now ? 0 : UNTIL_ESCALATED_MS,
      force: now,
      scanner: this.host.scanner,
      defer,
    });
    if (!now) {
      const timer = this.clock.setTimer(grace, () => termination.escalate());
      void termination.done.catch(() => undefined).finally(() => this.clock.clearTimer(timer));
    }
    return termination;
  }

  private scheduleAutoRestart(): void {
    this.enqueue(() => this.autoRestart()).catch((err: unknown) => {
      this.host.log.error(
        `service ${this.name}: automatic restart: ${err instanceof Error ? err.message : String(err)}`,
      );
    });
  }

  private async autoRestart(): Promise<void> {
    // A user stop or start since the decision wins.
    if (!this.wantUp || this.closed || !this.host.accepting()) return;
    if (this.run !== null && !this.run.exited) return;
    if (!restartDue(this.current)) return;
    this.restartCount++;
    try {
      await this.spawnRun(true);
    } catch {
      // spawnRun has set `failed` and last_error; a command that vanished will not come back by retrying.
    }
  }

  private sweep(run: Run): void {
    // The /proc scan waits for the next turn (defer): the restart's spawn must not wait for it.
    const termination = run.killing ?? this.endRuns([runTarget(run)], false, true);
    this.lingering.set(run.id, { run, termination });
    termination.done
      .then(
        (result) => {
          if (result.killed) this.host.log.info(`service ${this.name}: ended leftover processes of pid ${run.pid}`);
        },
        () => undefined,
      )
      .finally(() => {
        this.lingering.delete(run.id);
        this.host.runsChanged();
      });
  }

  /** Wait for `p`, at most `ms` (the timer is cleared either way, so it never holds the loop). */
  private within(p: Promise<void>, ms: number): Promise<void> {
    let timer: unknown;
    const timeout = new Promise<void>((resolve) => {
      timer = this.clock.setTimer(ms, resolve);
    });
    return Promise.race([p, timeout]).finally(() => this.clock.clearTimer(timer));
  }

  private setState(state: ServiceState): void {
    this.current = state;
    if (state === 'stopped' || state === 'failed') this.releaseLog();
    // What the state file calls wanted follows the state (coalesced: one write per turn at most).
    this.host.runsChanged();
  }

  private openLog(def: ServiceDefinition): ServiceLog {
    // Throws (and the service is not created or redefined) only when an earlier owner's lines can be
    // neither moved nor deleted: they must not be served to the new owner.
    const claim = claimLog(this.host.logsDir, def.name, logOwner(def));
    if (claim.moved !== null || claim.removed)
      this.host.log.info(
        `service ${def.name}: now defined by ${def.origin}; the earlier owner's log was ${claim.moved !== null ? `moved to ${claim.moved}` : 'deleted (it could not be moved)'}`,
      );
    if (claim.unrecorded !== null)
      this.host.log.warn(`service ${def.name}: cannot record who owns its log: ${claim.unrecorded.message}`);
    return new ServiceLog(
      this.host.logsDir,
      def.name,
      logOptions(def, (err) => {
        if (this.logErrorReported) return;
        this.logErrorReported = true;
        this.host.log.warn(
          `service ${this.name}: ${this.logErrorText(err) ?? err.message} (the service keeps running; its output is dropped until the log can be written)`,
        );
      }),
    );
  }

  private logErrorText(err: Error | null = this.serviceLog.lastError): string | null {
    return err === null ? null : `cannot write its log ${this.serviceLog.file}: ${err.message}`;
  }
}

/** Command probes run as the service does (its user, env and cwd). */
function probeContext(launch: Launch): ProbeContext {
  return {
    env: launch.env,
    cwd: launch.cwd,
    wrap: launch.wrap,
    signalVia: launch.signalVia,
    ...(launch.runAs.uid !== undefined ? { uid: launch.runAs.uid } : {}),
    ...(launch.runAs.gid !== undefined ? { gid: launch.runAs.gid } : {}),
  };
}

function runTarget(run: Run): RunTarget {
  const via = run.launch.signalVia;
  return {
    pgid: run.pgid,
    marker: run.id,
    leaderAlive: () => !run.exited,
    ...(via !== null ? { signalVia: via } : {}),
  };
}

/** Who a service's log belongs to: the plugin that defines it, or the admin (file and ad-hoc services). */
function logOwner(def: ServiceDefinition): string {
  const plugin = pluginOf(def, def.name);
  return (plugin === null ? ADMIN : pluginIdentity(plugin)).label;
}
