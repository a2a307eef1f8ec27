// Running one command to completion for Run / SudoRun: no shell, its own process group, output captured
// as bytes, and bounded in time and size (conventions 6 and 7). Past a bound the whole group is killed,
// not just the direct child, so a grandchild cannot keep running (or keep the pipes open) after a
// timeout.

import { spawn } from 'node:child_process';
import os from 'node:os';
import { AdiError } from '../core/errors.js';

/** The daemon's default time limit for one command. */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** The daemon's default limit on stdout and stderr together: the whole result travels in one frame. */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/**
 * After the command exits, how long to wait for output pipes that something of another user (reached
 * through sudo, which this process may not signal) still holds open before killing it through
 * `groupKiller`.
 */
export const LINGER_MS = 200;
/** Bound on one signalling helper (sudo ... kill). */
const HELPER_TIMEOUT_MS = 10_000;
/** setTimeout's own ceiling (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Argv {
  /** An absolute path (resolveCommand) or a program the env's PATH finds. */
  file: string;
  args: string[];
}

export interface RunOptions {
  timeoutMs?: number;
  maxOutputBytes?: number;
  env: Record<string, string>;
  cwd: string;
  /** Run as this uid/gid (needs root); supplementary groups are dropped by libuv when either is set. */
  uid?: number;
  gid?: number;
  /**
   * For a command run through sudo as another user: this process may not be allowed to signal that
   * user's processes, so this returns the argv that SIGKILLs the group with the needed rights (e.g.
   * `sudo -n -u adi -- /usr/bin/kill -KILL -- -<pgid>`). Null or absent: a direct kill is enough.
   */
  groupKiller?: (pgid: number) => Argv | null;
  /** Aborting kills the group and rejects with CANCELLED. */
  signal?: AbortSignal;
  /**
   * A budget shared with other commands (the caller's identity): every chunk of output is taken from
   * it, and a chunk it refuses ends the command like maxOutputBytes does, with `refused` as the message.
   */
  budget?: OutputBudget;
}

export interface OutputBudget {
  /** Takes `bytes` from the budget; false (nothing taken) when they do not fit. */
  take(bytes: number): boolean;
  /** The OUTPUT_TOO_LARGE message when a chunk did not fit. */
  readonly refused: string;
}

export interface RunOutput {
  /** The exit status, or 128 + the signal's number when a signal ended the command. */
  exit_code: number;
  stdout: Buffer;
  stderr: Buffer;
  /** The signal that ended the command, or null. */
  signal: string | null;
}

export function signalNumber(name: string): number | null {
  const n = (os.constants.signals as Record<string, number | undefined>)[name];
  return n ?? null;
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) ? `${s} s` : `${s.toFixed(3).replace(/0+$/, '')} s`;
}

/**
 * Runs `argv` and resolves with its exit status and output once it has exited and its output pipes
 * have closed. Rejects with AdiError COMMAND_TIMEOUT or OUTPUT_TOO_LARGE (the group was killed),
 * CANCELLED, COMMAND_NOT_FOUND or SPAWN_FAILED.
 */
export function runCommand(argv: Argv, opts: RunOptions): Promise<RunOutput> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxOutput = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    return Promise.reject(
      new AdiError('BAD_ARGUMENT', `The time limit must be a positive number of milliseconds, not ${timeoutMs}.`),
    );
  }
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) {
    return Promise.reject(
      new AdiError('BAD_ARGUMENT', `The output limit must be a whole number of bytes, not ${maxOutput}.`),
    );
  }
  if (opts.signal?.aborted) {
    return Promise.reject(new AdiError('CANCELLED', 'The command was cancelled before it started.'));
  }

  return new Promise<RunOutput>((resolve, reject) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv.file, argv.args, {
        cwd: opts.cwd,
        env: opts.env,
        // Its own process group (setsid), so the group can be killed as one.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        shell: false,
        windowsHide: true,
        ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
        ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
      });
    } catch (err) {
      reject(
        new AdiError(
          'SPAWN_FAILED',
          `Could not start ${argv.file}: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        ),
      );
      return;
    }
    const stdoutStream = child.stdout;
    const stderrStream = child.stderr;
    if (stdoutStream === null || stderrStream === null) {
      reject(new AdiError('INTERNAL', 'The command was started without output pipes.'));
      return;
    }

    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let total = 0;
    let settled = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let openStreams = 2;
    let killerRun = false;
    let lingerTimer: NodeJS.Timeout | undefined;

    const killGroup = (useKiller: boolean): void => {
      const pgid = child.pid;
      if (pgid === undefined) return;
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // ESRCH: the group is gone. EPERM: its members belong to another user; groupKiller handles that.
      }
      if (useKiller && !killerRun && opts.groupKiller !== undefined) {
        const k = opts.groupKiller(pgid);
        if (k !== null) {
          killerRun = true;
          runHelper(k, opts.env);
        }
      }
    };

    const cleanup = (): void => {
      clearTimeout(timer);
      if (lingerTimer !== undefined) clearTimeout(lingerTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    };

    const fail = (err: AdiError): void => {
      if (settled) return;
      settled = true;
      cleanup();
      killGroup(true);
      stdoutStream.destroy();
      stderrStream.destroy();
      reject(err);
    };

    const finish = (): void => {
      if (settled || exited === null || openStreams > 0) return;
      settled = true;
      cleanup();
      const { code, signal } = exited;
      const exitCode = code ?? (signal !== null ? 128 + (signalNumber(signal) ?? 0) : 255);
      resolve({ exit_code: exitCode, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), signal });
    };

    const timer = setTimeout(
      () => {
        fail(
          new AdiError(
            'COMMAND_TIMEOUT',
            `The command ran past its time limit (timeout_secs = ${formatSeconds(timeoutMs)}); its process group was killed.`,
          ),
        );
      },
      Math.min(Math.ceil(timeoutMs), MAX_TIMER_MS),
    );

    const onAbort = (): void =>
      fail(new AdiError('CANCELLED', 'The command was cancelled; its process group was killed.'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const collect =
      (into: Buffer[]) =>
      (chunk: Buffer): void => {
        if (settled) return;
        total += chunk.length;
        if (total > maxOutput) {
          fail(
            new AdiError(
              'OUTPUT_TOO_LARGE',
              `The command's output passed its size limit (max_output_bytes = ${maxOutput} bytes, stdout and stderr together); its process group was killed.`,
            ),
          );
          return;
        }
        if (opts.budget !== undefined && !opts.budget.take(chunk.length)) {
          fail(new AdiError('OUTPUT_TOO_LARGE', opts.budget.refused));
          return;
        }
        into.push(chunk);
      };
    stdoutStream.on('data', collect(stdout));
    stderrStream.on('data', collect(stderr));
    const streamClosed = (): void => {
      openStreams--;
      finish();
    };
    stdoutStream.once('close', streamClosed);
    stderrStream.once('close', streamClosed);

    child.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code === 'ENOENT' ? 'COMMAND_NOT_FOUND' : 'SPAWN_FAILED';
      fail(new AdiError(code, `Could not start ${argv.file}: ${err.message}`, { cause: err }));
    });

    child.once('exit', (code, signal) => {
      exited = { code, signal };
      // Nothing outlives the command: whatever it left in its group goes now. Data already written to
      // the pipes stays readable. (The group id cannot be reused while any member is alive.)
      killGroup(false);
      if (openStreams > 0 && !settled) {
        lingerTimer = setTimeout(() => {
          // Something we may not signal still holds the pipes: kill it through sudo and stop reading.
          killGroup(true);
          stdoutStream.destroy();
          stderrStream.destroy();
        }, LINGER_MS);
      }
      finish();
    });
  });
}

/**
 * Fire-and-forget: runs a signalling helper (the `kill` a sudo chain wraps), bounded. Its failure only
 * means the group is gone already (or sudo refused, which the caller's own wait then notices).
 */
export function runHelper(argv: Argv, env: Record<string, string>): void {
  try {
    const child = spawn(argv.file, argv.args, { env, cwd: '/', stdio: 'ignore', shell: false });
    const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS);
    timer.unref();
    child.once('error', () => clearTimeout(timer));
    child.once('exit', () => clearTimeout(timer));
  } catch {
    // Nothing more can be done.
  }
}
