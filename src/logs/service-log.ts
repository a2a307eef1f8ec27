// One service's log (design §2 `logs`): the bytes of its stdout and stderr as they came, the
// supervisor's own notes, and an index of (offset, time, stream) per stored chunk; see store.ts for the
// format and reader.ts for how lines, times, tails, follows and cursors are rebuilt from it.
//
// Appends are synchronous on purpose: the caller reads the child's next chunk only after write()
// returns, so a flooding child is throttled by its own pipe and nothing is buffered without bound. The
// work per chunk is two write() calls and a couple of native byte searches, never a loop over lines:
// capture runs at the speed of the pipe and the disk.

import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import { formatLogLine } from '../protocol/log-line.js';
import { splitBatch, type LogLine } from '../protocol/log-batch.js';
import { LogReader, type LogSnapshot } from './reader.js';
import { noteCaptured } from './reclaim.js';
import { rotateFiles } from './rotate.js';
import {
  decodeHeader,
  decodeRecord,
  encodeHeader,
  encodeRecord,
  ERR,
  FLAG_CUT,
  HEADER_BYTES,
  MAX_LINE_BYTES,
  newEpoch,
  NONE,
  OUT,
  readAt,
  RECORD_BYTES,
  segmentPaths,
  STREAM_NAMES,
  SYS,
  writeAll,
  type SegmentHeader,
} from './store.js';

export { parseLogLine } from '../protocol/log-line.js';

export interface LogOptions {
  /** Rotate when the live segment (data and index) would grow past this many bytes. */
  maxBytes: number;
  /** Rotated segments kept besides the live one. */
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

/** Offsets in a segment are u32: a segment is rotated before it reaches this, whatever maxBytes says. */
const MAX_SEGMENT_BYTES = 0xffff0000;

/** One record never holds more than this (a frame of a reader's answer holds at least one record). */
const MAX_RECORD_BYTES = 1024 * 1024;

// O_NOFOLLOW: a symlink planted at the log path must not redirect our writes (to a file of the daemon's
// user, or root's). O_NONBLOCK: a FIFO planted there fails to open instead of blocking the daemon; it
// has no effect on regular files.
const OPEN_FLAGS =
  fs.constants.O_RDWR |
  fs.constants.O_APPEND |
  fs.constants.O_CREAT |
  fs.constants.O_NOFOLLOW |
  fs.constants.O_NONBLOCK;

const LF = 0x0a;
const STREAM_CODE: Record<LogStream, number> = { out: OUT, err: ERR };

function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && (byte & 0xc0) === 0x80;
}

/** Where the live segment stands: what a reader that starts now may read up to. */

export type { LogSnapshot };

export class ServiceLog {
  /** Path of the live data file: `${dir}/${name}.log`. Rotated ones are `${name}.log.1` (newest) .. `.N`. */
  readonly file: string;
  /** `${dir}/${name}`: the path of every file of this log without its extension. */
  readonly base: string;
  maxFiles: number;

  private readonly dir: string;
  private maxBytes: number;
  private readonly onError: ((err: Error) => void) | undefined;
  private dataFd: number | null = null;
  private indexFd: number | null = null;
  private header: SegmentHeader | null = null;
  /** Data bytes and records of the live segment, tracked rather than stat'ed on every write. */
  private size = 0;
  private records = 0;
  /** Per stream (out, err): where its unfinished line began, and its length so far. */
  private readonly open = [NONE, NONE];
  private readonly pending = [0, 0];
  private error: Error | null = null;
  private readonly waiters = new Set<() => void>();
  /** See retire(). */
  retired = false;
  private readonly record = Buffer.alloc(RECORD_BYTES);

  constructor(dir: string, name: string, options: ServiceLogOptions = {}) {
    // The manager validates names; this is the last line before the name becomes a path.
    if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
      throw new AdiError('BAD_SERVICE_NAME', `Invalid log name: ${JSON.stringify(name)}`);
    }
    this.dir = dir;
    this.base = path.join(dir, name);
    this.file = segmentPaths(this.base, 0).data;
    this.maxBytes = DEFAULT_LOG_OPTIONS.maxBytes;
    this.maxFiles = DEFAULT_LOG_OPTIONS.maxFiles;
    this.configure(options);
    this.onError = options.onError;
    // Nothing touches the disk here: the directory is created on the first write, so an unwritable one
    // shows up as lastError, not as a service that cannot even be defined.
  }

  /**
   * New rotation settings (a reload changed them); they apply from the next write. The same object stays
   * the service's log, so its followers keep following.
   */
  configure(options: Partial<LogOptions>): void {
    const maxBytes = options.maxBytes ?? DEFAULT_LOG_OPTIONS.maxBytes;
    const maxFiles = options.maxFiles ?? DEFAULT_LOG_OPTIONS.maxFiles;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new AdiError('BAD_CONFIG', `log max bytes must be a positive integer, got ${maxBytes}`);
    }
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 0 || maxFiles > MAX_ROTATED_FILES) {
      throw new AdiError(
        'BAD_CONFIG',
        `log max files must be an integer from 0 to ${MAX_ROTATED_FILES}, got ${maxFiles}`,
      );
    }
    this.maxBytes = Math.min(maxBytes, MAX_SEGMENT_BYTES);
    this.maxFiles = maxFiles;
  }

  /** The last write error, or null once a write has succeeded since. */
  get lastError(): Error | null {
    return this.error;
  }

  /** Whether the live segment's files are open (a stopped service's are not). */
  get isOpen(): boolean {
    return this.dataFd !== null;
  }

  /**
   * Store raw bytes read from the child's stdout/stderr, as they are. A line reaching MAX_LINE_BYTES
   * without a newline is ended there (the rest continues as the next line), so no line is unbounded.
   */
  write(stream: LogStream, chunk: Buffer): void {
    this.guard(() => {
      if (!this.ensureOpen()) return;
      const s = STREAM_CODE[stream];
      const time = Date.now();
      let rest = chunk;
      while (rest.length > 0) {
        let piece = rest.length > MAX_RECORD_BYTES ? rest.subarray(0, MAX_RECORD_BYTES) : rest;
        const cut = this.cutPoint(s, piece);
        if (cut >= 0) piece = piece.subarray(0, cut);
        if (piece.length > 0 && !this.append(s, piece, time, 0)) return;
        if (cut >= 0 && !this.cut(s, time)) return;
        rest = rest.subarray(piece.length);
      }
      this.wake();
      noteCaptured(chunk.length);
    });
  }

  /** End a stream's unfinished line (called when the process's pipe ends). */
  flushPartial(stream: LogStream): void {
    this.guard(() => {
      const s = STREAM_CODE[stream];
      if (this.open[s] === NONE || !this.ensureOpen()) return;
      if (this.cut(s, Date.now())) this.wake();
    });
  }

  /** Record a line of the supervisor's own ("started pid 123"); a multi-line text becomes several lines. */
  note(text: string): void {
    this.guard(() => {
      if (!this.ensureOpen()) return;
      const lines = text.split('\n').map((l) => {
        const b = Buffer.from(l);
        return b.length <= MAX_LINE_BYTES ? b : b.subarray(0, MAX_LINE_BYTES);
      });
      const buf = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
      if (this.append(SYS, buf, Date.now(), 0)) this.wake();
    });
  }

  /**
   * The last `lines` lines the service wrote (oldest first), formatted `<time> <stream> <text>` with the
   * text decoded as UTF-8. The supervisor's notes are included where they fall and do not count.
   * (Tests and tools; the daemon streams the same lines to clients with LogReader.)
   */
  async tail(lines: number): Promise<string[]> {
    const reader = await LogReader.tail(this, Math.min(Math.floor(lines), MAX_TAIL_LINES));
    try {
      const out: string[] = [];
      for (let batch = reader.next(1 << 20); batch !== null; batch = reader.next(1 << 20))
        for (const line of splitBatch(batch)) out.push(formatLine(line));
      return out;
    } finally {
      reader.close();
    }
  }

  /**
   * Call `listener` with each line that ends from now on, formatted as tail()'s. Returns the function
   * that stops it. (Tests and tools; clients follow through ServiceLogs.)
   */
  follow(listener: (line: string) => void): () => void {
    const reader = LogReader.at(this, null);
    let stopped = false;
    let unwait: (() => void) | null = null;
    const pump = (): void => {
      unwait = null;
      if (stopped || this.retired) return;
      for (let batch = reader.next(1 << 20); batch !== null && !stopped; batch = reader.next(1 << 20)) {
        for (const line of splitBatch(batch)) {
          if (stopped) break;
          listener(formatLine(line));
        }
      }
      if (!stopped) unwait = this.onAppend(pump);
    };
    unwait = this.onAppend(pump);
    return () => {
      stopped = true;
      unwait?.();
      reader.close();
    };
  }

  /** Call `fn` once, after the next append or rotation. Returns the function that cancels it. */
  onAppend(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => {
      this.waiters.delete(fn);
    };
  }

  /** Where the live segment stands now; null while the log cannot be opened. */
  snapshot(): LogSnapshot | null {
    // A closed log (a stopped service's) is read from disk, not reopened: it holds no fds.
    if (this.dataFd === null || this.header === null) return this.peek();
    return {
      epoch: this.header.epoch,
      segment: this.header.id,
      records: this.records,
      size: this.size,
      openOut: this.open[OUT] as number,
      openErr: this.open[ERR] as number,
    };
  }

  private peek(): LogSnapshot | null {
    let fd: number;
    try {
      fd = fs.openSync(
        segmentPaths(this.base, 0).index,
        fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
      );
    } catch {
      return null;
    }
    try {
      const header = decodeHeader(readAt(fd, HEADER_BYTES, 0));
      if (header === null) return null;
      const records = Math.max(0, Math.floor((fs.fstatSync(fd).size - HEADER_BYTES) / RECORD_BYTES));
      const last =
        records > 0 ? decodeRecord(readAt(fd, RECORD_BYTES, HEADER_BYTES + (records - 1) * RECORD_BYTES), 0) : null;
      return {
        epoch: header.epoch,
        segment: header.id,
        records,
        size: last === null ? 0 : last.start + last.len,
        openOut: NONE,
        openErr: NONE,
      };
    } catch {
      return null;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * This object no longer stands for the service's log (its files were moved away when the name passed
   * to another owner): close it and wake its followers, which end their streams on seeing `retired`.
   */
  retire(): void {
    this.retired = true;
    this.close();
    this.wake();
  }

  /**
   * End the unfinished lines and close the files. Idempotent. The log stays usable: a later write
   * reopens it, so a service restarted with the same ServiceLog keeps logging.
   */
  close(): void {
    this.flushPartial('out');
    this.flushPartial('err');
    this.closeFds();
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

  /**
   * Where to end stream `s`'s line inside `buf` so it stays at most MAX_LINE_BYTES, or -1. Only the first
   * line of `buf` (continuing the unfinished one) and, for a buffer longer than a line, the lines inside
   * it can be too long: two native searches in the common case, no loop over lines.
   */
  private cutPoint(s: number, buf: Buffer): number {
    const have = this.pending[s] as number;
    if (have + buf.length <= MAX_LINE_BYTES) return -1;
    let from = 0;
    let lineLen = have;
    for (;;) {
      const nl = buf.indexOf(LF, from);
      const end = nl === -1 ? buf.length : nl;
      if (lineLen + (end - from) > MAX_LINE_BYTES) {
        let c = from + (MAX_LINE_BYTES - lineLen);
        // Do not split a UTF-8 character when its start is in this buffer.
        for (let back = 0; back < 3 && c > from + 1 && isContinuation(buf[c]); back++) c--;
        return c;
      }
      if (nl === -1 || buf.length - (nl + 1) <= MAX_LINE_BYTES) return -1;
      from = nl + 1;
      lineLen = 0;
    }
  }

  /** Append one record (data then index). False when it could not be stored (the error is recorded). */
  private append(s: number, data: Buffer, time: number, flags: number): boolean {
    // A cut (no bytes) never rotates: rotation itself writes cuts into the segment it ends.
    if (
      data.length > 0 &&
      this.records > 0 &&
      this.size + data.length + HEADER_BYTES + (this.records + 1) * RECORD_BYTES > this.maxBytes
    ) {
      if (!this.rotate(time)) return false;
    }
    const dataFd = this.dataFd;
    const indexFd = this.indexFd;
    if (dataFd === null || indexFd === null) return false;
    const start = this.size;
    encodeRecord(this.record, 0, {
      time,
      start,
      len: data.length,
      stream: s,
      flags,
      openOut: this.open[OUT] as number,
      openErr: this.open[ERR] as number,
    });
    try {
      if (data.length > 0) writeAll(dataFd, data);
      writeAll(indexFd, this.record);
    } catch (err) {
      // Undo a partial write, so the files stay in step; the chunk is lost (the disk is full or gone).
      try {
        fs.ftruncateSync(dataFd, start);
        fs.ftruncateSync(indexFd, HEADER_BYTES + this.records * RECORD_BYTES);
      } catch {
        // Reopening checks the files again.
        this.closeFds();
      }
      // The line the chunk belonged to is incomplete: what comes next starts a new one.
      if (s !== SYS) this.lost(s);
      this.fail(err);
      return false;
    }
    this.size += data.length;
    this.records++;
    this.error = null;
    if (s === SYS) return true;
    if ((flags & FLAG_CUT) !== 0) {
      this.open[s] = NONE;
      this.pending[s] = 0;
      return true;
    }
    const nl = data.lastIndexOf(LF);
    if (nl === -1) {
      if (this.open[s] === NONE) this.open[s] = start;
      this.pending[s] = (this.pending[s] as number) + data.length;
    } else {
      const after = data.length - nl - 1;
      this.open[s] = after > 0 ? start + nl + 1 : NONE;
      this.pending[s] = after;
    }
    return true;
  }

  private cut(s: number, time: number): boolean {
    if (this.open[s] === NONE) return true;
    return this.append(s, Buffer.alloc(0), time, FLAG_CUT);
  }

  /** A stored part of a line is followed by a lost chunk: end it, so the next bytes start a new line. */
  private lost(s: number): void {
    if (this.open[s] === NONE) return;
    try {
      this.cut(s, Date.now());
    } catch {
      // Nothing more to do: the next reopen ends it.
    }
  }

  /** Open (or create) the live segment; checks and repairs what a crash may have left. */
  private ensureOpen(): boolean {
    if (this.dataFd !== null) return true;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const live = segmentPaths(this.base, 0);
      let dataFd = openRegular(live.data);
      let indexFd: number;
      try {
        indexFd = openRegular(live.index);
      } catch (err) {
        fs.closeSync(dataFd);
        throw err;
      }
      let header = decodeHeader(readAt(indexFd, HEADER_BYTES, 0));
      if (header === null && (fs.fstatSync(dataFd).size > 0 || fs.fstatSync(indexFd).size > 0)) {
        // A log of an earlier version (text lines, no index), or a damaged index: kept aside as
        // NAME.log.old for people to read, and a new log begins.
        fs.closeSync(dataFd);
        fs.closeSync(indexFd);
        fs.renameSync(live.data, `${live.data}.old`);
        fs.rmSync(live.index, { force: true });
        dataFd = openRegular(live.data);
        indexFd = openRegular(live.index);
      }
      this.dataFd = dataFd;
      this.indexFd = indexFd;
      if (header === null) {
        header = this.header !== null ? { id: this.header.id + 1, epoch: this.header.epoch } : this.inheritHeader();
        fs.ftruncateSync(indexFd, 0);
        fs.ftruncateSync(dataFd, 0);
        writeAll(indexFd, encodeHeader(header));
        this.size = 0;
        this.records = 0;
        this.open[OUT] = this.open[ERR] = NONE;
        this.pending[OUT] = this.pending[ERR] = 0;
      } else {
        this.repair(dataFd, indexFd);
      }
      this.header = header;
      return true;
    } catch (err) {
      this.closeFds();
      this.fail(err);
      return false;
    }
  }

  /** A new live segment continues the numbering of the rotated ones, if any. */
  private inheritHeader(): SegmentHeader {
    try {
      const fd = fs.openSync(segmentPaths(this.base, 1).index, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const h = decodeHeader(readAt(fd, HEADER_BYTES, 0));
        if (h !== null) return { id: h.id + 1, epoch: h.epoch };
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // No rotated segment: a new log.
    }
    return { id: 1, epoch: newEpoch() };
  }

  /**
   * Make data and index agree after a crash (a record whose bytes are missing is dropped, bytes without
   * a record are cut off), then end the lines the previous writer left unfinished.
   */
  private repair(dataFd: number, indexFd: number): void {
    const dataSize = fs.fstatSync(dataFd).size;
    let records = Math.floor((fs.fstatSync(indexFd).size - HEADER_BYTES) / RECORD_BYTES);
    let end = 0;
    let last = null;
    while (records > 0) {
      last = decodeRecord(readAt(indexFd, RECORD_BYTES, HEADER_BYTES + (records - 1) * RECORD_BYTES), 0);
      end = last.start + last.len;
      if (end <= dataSize) break;
      records--;
      last = null;
    }
    if (records === 0) end = 0;
    fs.ftruncateSync(indexFd, HEADER_BYTES + records * RECORD_BYTES);
    if (dataSize > end) fs.ftruncateSync(dataFd, end);
    this.size = end;
    this.records = records;
    this.open[OUT] = this.open[ERR] = NONE;
    this.pending[OUT] = this.pending[ERR] = 0;
    if (last === null) return;
    // Unfinished lines after the last record: cut them, so a new run's output does not join them.
    const open = [last.openOut, last.openErr];
    if (last.stream !== SYS) {
      if ((last.flags & FLAG_CUT) !== 0) open[last.stream] = NONE;
      else {
        const data = readAt(dataFd, last.len, last.start);
        const nl = data.lastIndexOf(LF);
        if (nl === -1) open[last.stream] = open[last.stream] === NONE ? last.start : (open[last.stream] as number);
        else open[last.stream] = nl === data.length - 1 ? NONE : last.start + nl + 1;
      }
    }
    const now = Date.now();
    for (const s of [OUT, ERR]) {
      if (open[s] === NONE) continue;
      this.open[s] = open[s] as number;
      this.cut(s, now);
    }
  }

  private rotate(time: number): boolean {
    // No line spans segments: each stream's unfinished line ends in the segment it began in.
    for (const s of [OUT, ERR]) if (this.open[s] !== NONE && !this.cut(s, time)) return false;
    this.closeFds();
    try {
      rotateFiles(this.base, this.maxFiles);
    } catch (err) {
      // The next write reopens the oversized live segment and tries again; its chunk is dropped meanwhile.
      this.fail(err);
      return false;
    }
    const ok = this.ensureOpen();
    this.wake();
    return ok;
  }

  private closeFds(): void {
    for (const fd of [this.dataFd, this.indexFd]) {
      if (fd === null) continue;
      try {
        fs.closeSync(fd);
      } catch {
        // Nothing useful to do: the fd is gone either way.
      }
    }
    this.dataFd = null;
    this.indexFd = null;
  }

  private wake(): void {
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const fn of waiters) {
      try {
        fn();
      } catch {
        // A reader's failure is its own.
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

function openRegular(file: string): number {
  const fd = fs.openSync(file, OPEN_FLAGS, 0o600);
  try {
    if (!fs.fstatSync(fd).isFile()) throw new Error(`Log path ${file} is not a regular file`);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return fd;
}

/** `<ISO time> <stream> <text>`, the text decoded as UTF-8 (invalid bytes become U+FFFD). */
export function formatLine(line: LogLine): string {
  return formatLogLine(new Date(line.time), STREAM_NAMES[line.stream] as 'out', line.text.toString('utf8'));
}
