// What a service asks of the OS and of time, behind two small interfaces so that its state machine is
// tested with fakes and without processes or waits: a Spawner (start a run, hear of its exit, end its
// processes) and a Clock (now, timers). The real ones are the defaults.

import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import {
  readProcStat,
  terminate,
  type RunTarget,
  type Termination,
  type TerminateOptions,
} from '../system/process-group.js';
import type { Launch } from './launch.js';

export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(timer: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer: (ms, fn) => setTimeout(fn, ms),
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/** A started run's main process. */
export interface RunProcess {
  readonly pid: number;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** The stream of one of its extra fds (the ready line), or null. */
  stream(fd: number): Readable | null;
  /** Called once, when the main process has exited. */
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
  /** Errors after the start (a failed kill, say). */
  onError(listener: (err: Error) => void): void;
}

export interface Spawner {
  /** Resolves once the process exists; rejects with the errno error (ENOENT, EACCES, ...) otherwise. */
  start(launch: Launch): Promise<RunProcess>;
  /** End every process of the targets: SIGTERM, then SIGKILL after the grace or on escalate(). */
  stop(targets: readonly RunTarget[], opts: TerminateOptions): Termination;
  /** /proc/<pid>/stat's starttime (names one process with its pid), or null. */
  starttime(pid: number): Promise<number | null>;
}

class ChildRun implements RunProcess {
  constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
  ) {}

  get stdout(): Readable | null {
    return this.child.stdout;
  }

  get stderr(): Readable | null {
    return this.child.stderr;
  }

  stream(fd: number): Readable | null {
    return (this.child.stdio[fd] as Readable | null | undefined) ?? null;
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.child.once('exit', listener);
  }

  onError(listener: (err: Error) => void): void {
    this.child.on('error', listener);
  }
}

export const realSpawner: Spawner = {
  async start(launch) {
    const child = spawn(launch.file, launch.args, launch.options);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    return new ChildRun(child, child.pid as number);
  },
  stop: terminate,
  async starttime(pid) {
    return (await readProcStat(pid))?.starttime ?? null;
  },
};
