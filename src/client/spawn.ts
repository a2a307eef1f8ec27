// Starting the daemon in the background: the same node
// binary runs `adi daemon run --background`, detached in its own session, its output appended to the
// daemon log. The caller then waits until the daemon answers a ping, not until a file appears.
//
// The daemon also gets a status pipe (fd 3, named by ADI_DAEMON_STATUS_FD): it writes "ok" there once
// it listens, or "error: <why>" if its start fails, and closes it. So a daemon that cannot start is
// reported at once and with its cause, even when the cause (a full disk) kept it from logging it.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Paths } from '../core/paths.js';
import { ensurePrivateDir } from '../core/files.js';
import { DAEMON_ONLY_ENV, STATUS_FD_ENV } from '../core/paths.js';
import { cliEntry } from '../core/version.js';

/** The daemon's end of the status pipe (named in its environment, STATUS_FD_ENV). */
const STATUS_FD = 3;
/** A status longer than this is cut (it is one line). */
const STATUS_MAX = 8192;

export interface Spawned {
  pid: number | undefined;
  /** Resolves with the exit code if the process ends (e.g. it found another daemon running). */
  exited: Promise<number | null>;
  /**
   * Resolves with the reason if the daemon failed to start: it said so on its status pipe, or it
   * exited with a failure (or a signal) before saying it listens. Never resolves otherwise.
   */
  failed: Promise<string>;
}

/**
 * glibc's allocator for the daemon: every block of 64 KiB or more gets a mapping of its own, returned to
 * the system when freed. By default such blocks come from the heap once the first large one is freed,
 * and a burst of log traffic (pipe reads, stream frames) leaves the heap at its high water for good:
 * 117-141 MB after 200 log followers had left, 87-108 MB with this and the collections of
 * logs/reclaim.ts (docs/performance.md, "Memory after a burst of log traffic"). A value the caller set
 * is kept.
 */
const DAEMON_MALLOC: Record<string, string> = { MALLOC_MMAP_THRESHOLD_: '65536' };

/**
 * The variables a daemon started from `env` gets for itself only (DAEMON_MALLOC, unless `env` sets
 * them), with DAEMON_ONLY_ENV naming them so that the daemon removes them before it starts services.
 * Also written into the units of `adi daemon install`.
 */
export function daemonOnlyEnv(env: NodeJS.ProcessEnv): Array<[string, string]> {
  const added = Object.entries(DAEMON_MALLOC).filter(([name]) => env[name] === undefined);
  return added.length === 0 ? [] : [...added, [DAEMON_ONLY_ENV, added.map(([name]) => name).join(',')]];
}

function daemonEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, [STATUS_FD_ENV]: String(STATUS_FD), ...Object.fromEntries(daemonOnlyEnv(env)) };
}

export function spawnDaemon(paths: Paths, env: NodeJS.ProcessEnv): Spawned {
  ensurePrivateDir(paths.dataDir);
  fs.mkdirSync(path.dirname(paths.logFile), { recursive: true, mode: 0o700 });
  const out = fs.openSync(
    paths.logFile,
    fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
    0o600,
  );
  try {
    const child = spawn(process.execPath, [cliEntry(), 'daemon', 'run', '--background'], {
      detached: true,
      stdio: ['ignore', out, out, 'pipe'],
      env: daemonEnv(env),
      cwd: '/',
    });
    const status = readStatus(child.stdio[STATUS_FD] as Readable | null);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    const failed = new Promise<string>((resolve) => {
      void status.then((text) => {
        if (text.startsWith('error: ')) resolve(text.slice('error: '.length));
      });
      void exited.then(async (code) => {
        // 0: another daemon holds the lock (the caller keeps waiting for that one to answer).
        if (code === 0) return;
        const said = await status;
        if (said.startsWith('error: ')) return;
        const last = lastLogLine(paths.logFile);
        resolve(
          `the daemon process ${code === null ? 'was killed' : `exited with code ${code}`} while starting${last !== null ? `; the last line of its log: ${last}` : ''}`,
        );
      });
    });
    child.unref();
    return { pid: child.pid, exited, failed };
  } finally {
    fs.closeSync(out);
  }
}

/** What the daemon wrote on its status pipe ('' when it closed it, or died, without a word). */
function readStatus(stream: Readable | null): Promise<string> {
  if (stream === null) return Promise.resolve('');
  // The pipe must not keep the caller alive: its wait has its own timers.
  (stream as Readable & { unref?: () => void }).unref?.();
  return new Promise((resolve) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      if (text.length < STATUS_MAX) text += chunk;
    });
    const done = (): void => resolve(text.slice(0, STATUS_MAX).trim());
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

/** The last non-empty line of a log file (its last 8 KiB), or null. */
export function lastLogLine(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, 8192);
    const buf = Buffer.alloc(length);
    fs.readSync(fd, buf, 0, length, size - length);
    const lines = buf
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    return lines.at(-1) ?? null;
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}
