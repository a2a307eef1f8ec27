// One service's log: the lines of its stdout and stderr plus the supervisor's own notes, in one file with
// size-based rotation, a backwards tail, and live followers (design §2 `logs`).
//
// Appends are synchronous on purpose: the caller reads the child's next chunk only after write() returns,
// so a flooding child is throttled by its own pipe and no line is lost or buffered without bound.

import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../errors.js';
import { LineSplitter } from './line-splitter.js';
import { formatLogLine } from './log-line.js';
import { rotatedPath, rotateFiles } from './rotate.js';
import { readTail } from './tail.js';

export { parseLogLine, type ParsedLogLine } from './log-line.js';

export interface LogOptions {
  /** Rotate when the live file would grow past this many bytes. */
  maxBytes: number;
  /** Rotated files kept besides the live one. */
  maxFiles: number;
}

export const DEFAULT_LOG_OPTIONS: LogOptions = Object.freeze({ maxBytes: 10 * 1024 * 1024, maxFiles: 4 });

export interface ServiceLogOptions extends Partial<LogOptions> {
  /** Told of a write error once, when writing starts failing (again after a recovery). Must not throw. */
  onError?: (err: Error) => void;
}

export type LogStream = 'out' | 'err';

/** tail() never collects more lines than this, whatever it is asked for. */
export const MAX_TAIL_LINES = 1_000_000;

/** Rotated files beyond this many are refused as a configuration error (each is a file to shift). */
const MAX_ROTATED_FILES = 1000;

// O_NOFOLLOW: a symlink planted at the log path must not redirect our writes (to a file of the daemon's
// user, or root's). O_NONBLOCK: a FIFO planted there fails to open instead of blocking the daemon; it
// has no effect on regular files.
const OPEN_FLAGS =
  fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

const LF = 0x0a;

interface Follower {
  fn: (line: string) => void;
}

/** Lines the service itself wrote (out/err), as opposed to the supervisor's notes. */
function isServiceLine(line: string): boolean {
  return !/^\S+ sys /.test(line);
}

export class ServiceLog {
  /** Path of the live file: `${dir}/${name}.log`. Rotated ones are `${name}.log.1` (newest) .. `${name}.log.N`. */
  readonly file: string;

  private readonly dir: string;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly splitters: Record<LogStream, LineSplitter> = { out: new LineSplitter(), err: new LineSplitter() };
  private readonly followers = new Set<Follower>();
  private fd: number | null = null;
  /** Bytes in the live file, tracked rather than stat'ed on every write. */
  private size = 0;
  /** A failed write left part of a line in the file: the next write starts with '\n' to end it. */
  private torn = false;
  private error: Error | null = null;
  /** Bumped by every rotation, so tail() can tell that files moved while it read them. */
  private rotations = 0;

  constructor(dir: string, name: string, options: ServiceLogOptions = {}) {
    // The manager validates names; this is the last line before the name becomes a path.
    if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
      throw new AdiError('BAD_SERVICE_NAME', `Invalid log name: ${JSON.stringify(name)}`);
    }
    const maxBytes = options.maxBytes ?? DEFAULT_LOG_OPTIONS.maxBytes;
    const maxFiles = options.maxFiles ?? DEFAULT_LOG_OPTIONS.maxFiles;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new AdiError('BAD_CONFIG', `log max bytes must be a positive integer, got ${maxBytes}`);
    }
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 0 || maxFiles > MAX_ROTATED_FILES) {
      throw new AdiError('BAD_CONFIG', `log max files must be an integer from 0 to ${MAX_ROTATED_FILES}, got ${maxFiles}`);
    }
    this.dir = dir;
    this.file = path.join(dir, `${name}.log`);
    this.maxBytes = maxBytes;
    this.maxFiles = maxFiles;
    this.onError = options.onError;
    // Nothing touches the disk here: the directory is created on the first write, so an unwritable one
    // shows up as lastError, not as a service that cannot even be defined.
  }

  /** The last write error, or null once a write has succeeded since. */
  get lastError(): Error | null {
    return this.error;
  }

  /**
   * Feed raw bytes read from the child's stdout/stderr. A partial trailing line is kept per stream until
   * its newline; a line over 64 KiB is written in 64 KiB pieces, so memory per stream stays bounded.
   */
  write(stream: LogStream, chunk: Buffer): void {
    this.guard(() => this.append(stream, this.splitters[stream].push(chunk)));
  }

  /** Write out a partial trailing line of a stream (called when the process exits). */
  flushPartial(stream: LogStream): void {
    this.guard(() => this.append(stream, this.splitters[stream].flush()));
  }

  /** Record a line of the supervisor's own ("started pid 123"); a multi-line text becomes several lines. */
  note(text: string): void {
    this.guard(() => {
      const splitter = new LineSplitter();
      const pieces = [...splitter.push(Buffer.from(text)), ...splitter.flush()];
      this.append('sys', pieces.length > 0 ? pieces : [Buffer.alloc(0)]);
    });
  }

  /**
   * The last `lines` complete lines the service wrote (oldest first) across the live and rotated files,
   * read from their ends. The supervisor's own notes (stream 'sys') are included where they fall but
   * do not count towards `lines`: `-n 200000` after 200,000 lines of output returns all of them.
   */
  async tail(lines: number): Promise<string[]> {
    const n = Math.min(Math.floor(lines), MAX_TAIL_LINES);
    if (!(n > 0)) return [];
    const files = [this.file];
    for (let i = 1; i <= this.maxFiles; i++) files.push(rotatedPath(this.file, i));
    // A rotation while we read shifts the files under us (a line could be read twice or missed): read
    // again. A child flooding fast enough to rotate every time gets the last attempt's answer.
    for (let attempt = 1; ; attempt++) {
      const before = this.rotations;
      const result = await readTail(files, n, { counts: isServiceLine });
      if (this.rotations === before || attempt === 3) return result;
    }
  }

  /**
   * Subscribe to each new line as written (the full formatted line, without '\n'). Called synchronously
   * by the writer; a listener that throws is removed. Returns the unsubscribe function.
   */
  follow(listener: (line: string) => void): () => void {
    // A wrapper per call, so the same function subscribed twice is two subscriptions.
    const follower: Follower = { fn: listener };
    this.followers.add(follower);
    return () => {
      this.followers.delete(follower);
    };
  }

  /**
   * Flush partial lines and close the file. Idempotent. The log stays usable: a later write reopens the
   * file, so a service restarted with the same ServiceLog keeps logging.
   */
  close(): void {
    this.flushPartial('out');
    this.flushPartial('err');
    this.closeFd();
  }

  // -------------------------------------------------------------------------------------------------

  /** write()/note() never throw: a logging failure must not break the pipe reader that called them. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(err);
    }
  }

  private append(stream: 'out' | 'err' | 'sys', pieces: Buffer[]): void {
    if (pieces.length === 0) return;
    const time = new Date().toISOString();
    // Decode once per line: bytes that are not UTF-8 become U+FFFD here, so file, tail and followers agree.
    const lines = pieces.map((piece) => formatLogLine(time, stream, piece.toString('utf8')));
    this.writeLines(lines);
    // Followers see the lines even while the disk fails: the live view is worth keeping.
    this.notify(lines);
  }

  /** Append the lines in as few writes as possible, rotating at maxBytes between lines, never inside one. */
  private writeLines(lines: string[]): void {
    if (!this.ensureOpen()) return; // dropped: holding them for a dir that may never come back is unbounded
    let batch: string[] = [];
    let batchBytes = 0;
    for (const line of lines) {
      const bytes = Buffer.byteLength(line) + 1;
      if (this.size + batchBytes > 0 && this.size + batchBytes + bytes > this.maxBytes) {
        if (batch.length > 0 && !this.writeBatch(batch)) return;
        batch = [];
        batchBytes = 0;
        if (!this.rotate()) return;
      }
      batch.push(line);
      batchBytes += bytes;
    }
    if (batch.length > 0) this.writeBatch(batch);
  }

  private writeBatch(batch: string[]): boolean {
    const fd = this.fd;
    if (fd === null) return false;
    const buf = Buffer.from(`${this.torn ? '\n' : ''}${batch.join('\n')}\n`);
    let off = 0;
    try {
      // One write per batch: O_APPEND writes of a regular file are not interleaved with other appenders.
      // The loop only matters for a short write (disk filling up), which then throws on the next round.
      while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      this.size += off;
      this.torn = off > 0 && buf[off - 1] !== LF;
      this.fail(err);
      return false;
    }
    this.size += buf.length;
    this.torn = false;
    this.error = null;
    return true;
  }

  private ensureOpen(): boolean {
    if (this.fd !== null) return true;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const fd = fs.openSync(this.file, OPEN_FLAGS, 0o600);
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile()) throw new Error(`Log path ${this.file} is not a regular file`);
        this.size = st.size;
      } catch (err) {
        fs.closeSync(fd);
        throw err;
      }
      this.fd = fd;
      return true;
    } catch (err) {
      this.fail(err);
      return false;
    }
  }

  private rotate(): boolean {
    this.closeFd();
    this.rotations++;
    this.torn = false;
    try {
      rotateFiles(this.file, this.maxFiles);
    } catch (err) {
      // The next write reopens the oversized live file and tries again; its lines are dropped meanwhile.
      this.fail(err);
      return false;
    }
    return this.ensureOpen();
  }

  private closeFd(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fs.closeSync(fd);
    } catch {
      // Nothing useful to do: the fd is gone either way.
    }
  }

  private notify(lines: string[]): void {
    if (this.followers.size === 0) return;
    const followers = [...this.followers];
    for (const line of lines) {
      for (const follower of followers) {
        if (!this.followers.has(follower)) continue; // unsubscribed (or removed) during this batch
        try {
          follower.fn(line);
        } catch {
          this.followers.delete(follower);
        }
      }
    }
  }

  /** Remember the error; tell onError only when writing starts failing, not on every failed write. */
  private fail(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    const first = this.error === null;
    this.error = e;
    if (first && this.onError) {
      try {
        this.onError(e);
      } catch {
        // A broken callback must not turn a log error into a crash.
      }
    }
  }
}
