// A fake Spawner and Clock (src/services/runtime.ts) for testing a Service's state machine without
// processes or waiting: the test decides when a process exits, whether it obeys SIGTERM, and when time
// passes.

import { PassThrough } from 'node:stream';
import type { Launch } from '../../src/services/launch.js';
import type { Clock, RunProcess, Spawner } from '../../src/services/runtime.js';
import type { RunTarget, TerminateOptions, TerminateResult, Termination } from '../../src/system/process-group.js';

interface Timer {
  at: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  private time = 1_000_000;
  private readonly timers = new Set<Timer>();

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): unknown {
    const timer = { at: this.time + ms, fn };
    this.timers.add(timer);
    return timer;
  }

  clearTimer(timer: unknown): void {
    this.timers.delete(timer as Timer);
  }

  /** Delays of the timers still pending, from now. */
  pending(): number[] {
    return [...this.timers].map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  /** Let `ms` pass, firing due timers in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers.delete(due);
      this.time = due.at;
      due.fn();
    }
    this.time = end;
  }
}

export class FakeProcess implements RunProcess {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly ready = new PassThrough();
  /** Signals it received, in order. */
  readonly signals: NodeJS.Signals[] = [];
  /** A SIGTERM ignorer: only SIGKILL ends it. */
  ignoresTerm = false;
  exited = false;
  private readonly exitListeners: ((code: number | null, signal: NodeJS.Signals | null) => void)[] = [];

  constructor(
    readonly pid: number,
    readonly launch: Launch,
  ) {}

  stream(fd: number): PassThrough | null {
    return fd === this.launch.readyFd ? this.ready : null;
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.exitListeners.push(listener);
  }

  onError(): void {
    // A fake process reports no late errors.
  }

  /** It exits (on the next turn, as a child's 'exit' event comes). */
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    setImmediate(() => {
      this.stdout.end();
      this.stderr.end();
      this.ready.end();
      for (const l of this.exitListeners) l(code, signal);
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.signals.push(signal);
    if (signal === 'SIGKILL' || !this.ignoresTerm) this.exit(null, signal);
  }
}

export class FakeSpawner implements Spawner {
  readonly started: FakeProcess[] = [];
  /** Each stop asked for: its targets' pids and options. */
  readonly stops: { pids: number[]; opts: TerminateOptions }[] = [];
  /** The next start fails with this errno. */
  failNext: string | null = null;
  /** Set on each new process before the Service sees it. */
  ignoreTerm = false;
  private nextPid = 1000;

  start(launch: Launch): Promise<RunProcess> {
    if (this.failNext !== null) {
      const code = this.failNext;
      this.failNext = null;
      return Promise.reject(Object.assign(new Error(`spawn ${launch.file} ${code}`), { code }));
    }
    const p = new FakeProcess(this.nextPid++, launch);
    p.ignoresTerm = this.ignoreTerm;
    this.started.push(p);
    return Promise.resolve(p);
  }

  /** The most recent process. */
  get last(): FakeProcess {
    const p = this.started[this.started.length - 1];
    if (p === undefined) throw new Error('nothing started');
    return p;
  }

  /** SIGTERM now; SIGKILL when forced or escalated; done once every target's process has exited. */
  stop(targets: readonly RunTarget[], opts: TerminateOptions): Termination {
    const procs = this.started.filter((p) => targets.some((t) => t.pgid === p.pid) && !p.exited);
    this.stops.push({ pids: procs.map((p) => p.pid), opts });
    let escalated = false;
    let wake: () => void = () => undefined;
    const done = (async (): Promise<TerminateResult> => {
      if (procs.length === 0) return { killed: false, remaining: [] };
      const gone = (): boolean => procs.every((p) => p.exited);
      if (opts.force !== true && opts.graceMs > 0) {
        for (const p of procs) p.signal('SIGTERM');
        while (!gone() && !escalated) await new Promise<void>((resolve) => (wake = resolve));
        if (gone()) return { killed: false, remaining: [] };
      }
      for (const p of procs) if (!p.exited) p.signal('SIGKILL');
      return { killed: true, remaining: [] };
    })();
    for (const p of procs) {
      p.onExit(() => wake());
    }
    return {
      done,
      escalate() {
        escalated = true;
        wake();
      },
    };
  }

  starttime(pid: number): Promise<number | null> {
    return Promise.resolve(pid * 10);
  }
}
