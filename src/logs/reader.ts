// Reading a service log back as lines: a tail, a follow, a resume from a cursor are one forward reader
// started at a position. A position is (segment, record): everything before it has been delivered, and
// the lines that end after it are what the reader gives. A line that began before the position and
// ends after it is given whole: each index record says where each stream's unfinished line began, so
// the reader starts there and skips that stream's older bytes. No line is delivered twice or missed,
// whether it ends before, across or after a tail/follow seam, a rotation, or a reconnect.
//
// Everything is read with synchronous reads of bounded size (a batch of at most ~`limit` bytes of
// lines per call), so one reader never holds the event loop or much memory, whatever it is asked for.

import fs from 'node:fs';
import { AdiError } from '../core/errors.js';
import { countLines, type LogBatchData } from '../protocol/log-batch.js';
import {
  decodeHeader,
  decodeRecord,
  FLAG_CUT,
  HEADER_BYTES,
  MAX_LINE_BYTES,
  NONE,
  readAt,
  RECORD_BYTES,
  segmentPaths,
  SYS,
  type IndexRecord,
} from './store.js';

export interface LogSnapshot {
  epoch: string;
  segment: number;
  records: number;
  /** Data bytes of the live segment. */
  size: number;
  /** Where stdout's / stderr's unfinished line began in the live segment, or NONE. */
  openOut: number;
  openErr: number;
}

/** What a reader needs of a service's log (LogFiles is one): where its segments are, and their state now. */
export interface LogFiles {
  readonly base: string;
  readonly maxFiles: number;
  snapshot(): LogSnapshot | null;
}

/** Lines that do not count (the supervisor's notes) are bounded too: a log of nothing but notes is not read whole. */
export const MAX_UNCOUNTED = 10_000;

const LF = 0x0a;
/** Index records read at once. */
const INDEX_BLOCK = 1024;
/** Data bytes read at once by the backward scan of a tail. */
const SCAN_WINDOW = 1024 * 1024;

export interface LogPosition {
  segment: number;
  /** The next record to read. */
  record: number;
  /** Bytes of that record already delivered (only a tail's start falls inside a record). */
  offset: number;
}

export interface LogBatch extends LogBatchData {
  data: Buffer;
  /** Lines in the batch. */
  count: number;
  /** Where a reader resuming after this batch starts. */
  cursor: string;
}

class Segment {
  constructor(
    readonly id: number,
    readonly dataFd: number,
    readonly indexFd: number,
  ) {}

  records(snap: LogSnapshot): number {
    if (this.id === snap.segment) return snap.records;
    // Rotated: complete, its size no longer changes.
    return Math.max(0, Math.floor((fs.fstatSync(this.indexFd).size - HEADER_BYTES) / RECORD_BYTES));
  }

  record(i: number): IndexRecord {
    return decodeRecord(readAt(this.indexFd, RECORD_BYTES, HEADER_BYTES + i * RECORD_BYTES), 0);
  }

  recordsAt(from: number, count: number): IndexRecord[] {
    const buf = readAt(this.indexFd, count * RECORD_BYTES, HEADER_BYTES + from * RECORD_BYTES);
    const out: IndexRecord[] = [];
    for (let at = 0; at + RECORD_BYTES <= buf.length; at += RECORD_BYTES) out.push(decodeRecord(buf, at));
    return out;
  }

  close(): void {
    for (const fd of [this.dataFd, this.indexFd]) {
      try {
        fs.closeSync(fd);
      } catch {
        // Gone either way.
      }
    }
  }
}

const RDONLY = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** Open segment `id` if it still exists. Both files are opened in one turn: no rotation falls between. */
function openSegment(log: LogFiles, snap: LogSnapshot, id: number): Segment | null {
  const k = snap.segment - id;
  if (k < 0 || k > log.maxFiles) return null;
  const p = segmentPaths(log.base, k);
  let dataFd = -1;
  let indexFd = -1;
  try {
    indexFd = fs.openSync(p.index, RDONLY);
    dataFd = fs.openSync(p.data, RDONLY);
    const h = decodeHeader(readAt(indexFd, HEADER_BYTES, 0));
    if (h !== null && h.id === id && h.epoch === snap.epoch) return new Segment(id, dataFd, indexFd);
  } catch {
    // Missing or unreadable: as if rotated away.
  }
  for (const fd of [dataFd, indexFd]) if (fd >= 0) fs.closeSync(fd);
  return null;
}

export function formatCursor(epoch: string, segment: number, record: number): string {
  return `${epoch}.${segment}.${record}`;
}

export function parseCursor(cursor: string): { epoch: string; segment: number; record: number } {
  const m = /^([0-9a-f]{16})\.(\d{1,15})\.(\d{1,15})$/.exec(cursor);
  if (m === null)
    throw new AdiError(
      'BAD_REQUEST',
      `Invalid log cursor ${JSON.stringify(cursor.slice(0, 80))}: use a cursor the daemon returned (LogBatch.cursor).`,
    );
  return { epoch: m[1] as string, segment: Number(m[2]), record: Number(m[3]) };
}

export interface ReaderOptions {
  /** Stop at the log's end as it is now (a tail), rather than following it. */
  bounded?: boolean;
}

export class LogReader {
  private seg: Segment | null = null;
  /** Next record of `seg` to read. */
  private record = 0;
  /** Per stream: bytes of the current segment before this offset belong to lines delivered already. */
  private readonly skip = [0, 0, 0];
  /** Cut records before this index end lines delivered already. */
  private cutFrom = 0;
  private readonly partial: Buffer[][] = [[], [], []];
  private readonly partialLen = [0, 0, 0];
  private epoch: string;
  /** A note for the next batch: lines were lost before the reader got to them. */
  private gap: string | null = null;
  /** Where a bounded reader stops. */
  private readonly end: { segment: number; record: number } | null;
  private closed = false;
  /** The segment to open once it exists (the reader started before the log, or it is being recreated). */
  private waitingFor = 1;

  private constructor(
    private readonly log: LogFiles,
    snap: LogSnapshot | null,
    options: ReaderOptions,
  ) {
    this.epoch = snap?.epoch ?? '';
    this.end =
      options.bounded === true
        ? snap === null
          ? { segment: 0, record: 0 }
          : { segment: snap.segment, record: snap.records }
        : null;
  }

  /**
   * A reader giving the last `n` lines the service wrote (its notes where they fall, not counted), then,
   * unless bounded, every line after them.
   */
  static async tail(log: LogFiles, n: number, options: ReaderOptions = {}): Promise<LogReader> {
    const snap = log.snapshot();
    if (snap === null || n <= 0) return LogReader.start(log, snap, null, options);
    const pos = await findTailStart(log, snap, n);
    // Appended meanwhile is after the position: a follower gets it, a bounded tail stops at `snap`.
    const reader = new LogReader(log, snap, options);
    reader.seek(log.snapshot() ?? snap, pos);
    return reader;
  }

  /** A reader from a cursor (the lines after it), or from now (null). */
  static at(log: LogFiles, cursor: string | null, options: ReaderOptions = {}): LogReader {
    const snap = log.snapshot();
    const pos = cursor === null ? null : parseCursor(cursor);
    return LogReader.start(log, snap, pos, options);
  }

  private static start(
    log: LogFiles,
    snap: LogSnapshot | null,
    pos: { epoch: string; segment: number; record: number } | null,
    options: ReaderOptions,
  ): LogReader {
    const reader = new LogReader(log, snap, options);
    if (snap === null) {
      // No log yet: everything written from now on is new.
      if (pos !== null) reader.gap = 'the log this cursor belongs to no longer exists; these are the lines since';
      return reader;
    }
    if (pos === null) {
      reader.seek(snap, { segment: snap.segment, record: snap.records, offset: 0 });
    } else if (pos.epoch !== snap.epoch) {
      reader.gap = 'the log this cursor belongs to was removed; these are the lines of the new one';
      reader.seek(snap, { segment: 1, record: 0, offset: 0 });
    } else {
      if (pos.segment > snap.segment || (pos.segment === snap.segment && pos.record > snap.records)) {
        throw new AdiError(
          'BAD_REQUEST',
          `The log cursor ${formatCursor(pos.epoch, pos.segment, pos.record)} points past the end of the log.`,
        );
      }
      reader.seek(snap, { ...pos, offset: 0 });
    }
    return reader;
  }

  /** Where a reader resuming after what this one gave starts. */
  get cursor(): string {
    if (this.seg === null) return formatCursor(this.epoch || '0'.repeat(16), 0, 0);
    return formatCursor(this.epoch, this.seg.id, this.record);
  }

  close(): void {
    this.closed = true;
    this.seg?.close();
    this.seg = null;
  }

  /**
   * The next lines, about `limit` bytes of them (more by at most one stored chunk), or null when there is
   * nothing new (a follower then waits for the log's next append).
   */
  next(limit: number): LogBatch | null {
    if (this.closed) return null;
    const out = new BatchBuilder();
    if (this.gap !== null) {
      out.line(Date.now(), SYS, Buffer.from(`adi: lines were lost here: ${this.gap}`));
      this.gap = null;
    }
    let snap = this.log.snapshot();
    if (this.seg === null && snap !== null && this.end === null) {
      // The log appeared (or came back) after this reader started: what it holds now is new.
      if (this.epoch !== '' && this.epoch !== snap.epoch) this.waitingFor = 1;
      this.epoch = snap.epoch;
      this.nextSegment(snap, this.waitingFor);
    }
    while (this.seg !== null && snap !== null && out.bytes < limit) {
      const seg = this.seg;
      const atEnd = this.end !== null && seg.id === this.end.segment;
      const count = atEnd ? Math.min(seg.records(snap), (this.end as { record: number }).record) : seg.records(snap);
      if (this.record >= count) {
        if (atEnd || seg.id === snap.segment || (this.end !== null && seg.id > this.end.segment)) break;
        this.nextSegment(snap, seg.id + 1);
        snap = this.log.snapshot();
        continue;
      }
      this.readRecords(seg, count, limit, out);
    }
    if (out.count === 0) return null;
    return out.finish(this.cursor);
  }

  // -------------------------------------------------------------------------------------------------

  /** Start at `pos` in segment pos.segment (or the oldest one after it that still exists). */
  private seek(snap: LogSnapshot, pos: LogPosition): void {
    this.epoch = snap.epoch;
    const seg = openSegment(this.log, snap, pos.segment);
    if (seg === null) {
      this.nextSegment(snap, pos.segment, true);
      return;
    }
    const count = seg.records(snap);
    if (pos.record >= count && pos.segment !== snap.segment) {
      // At the end of a rotated segment: the next one starts clean.
      seg.close();
      this.nextSegment(snap, pos.segment + 1);
      return;
    }
    const r = Math.min(pos.record, count);
    const rec: IndexRecord | null = r < count ? seg.record(r) : null;
    const opens = rec !== null ? [rec.openOut, rec.openErr, NONE] : [snap.openOut, snap.openErr, NONE];
    const base = rec !== null ? rec.start : snap.size;
    for (let t = 0; t < 3; t++) this.skip[t] = opens[t] !== NONE ? (opens[t] as number) : base;
    if (rec !== null && pos.offset > 0) {
      if ((rec.flags & FLAG_CUT) !== 0) this.skip[rec.stream] = rec.start;
      else {
        const before = readAt(seg.dataFd, Math.min(pos.offset, rec.len), rec.start);
        const nl = before.lastIndexOf(LF);
        if (nl !== -1) this.skip[rec.stream] = rec.start + nl + 1;
      }
    }
    this.cutFrom = pos.offset > 0 ? r + 1 : r;
    // Start at the record holding the oldest byte still wanted (record r starts at `base`).
    const from = Math.min(...this.skip);
    let lo = 0;
    let hi = r;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((mid === r ? base : seg.record(mid).start) <= from) lo = mid;
      else hi = mid - 1;
    }
    this.seg = seg;
    this.record = lo;
    for (let t = 0; t < 3; t++) this.resetPartial(t);
  }

  /** Move to segment `id`, or (rotated away) the oldest one after it, noting the lines lost. */
  private nextSegment(snap: LogSnapshot, id: number, lostAlready = false): void {
    this.seg?.close();
    this.seg = null;
    for (let t = 0; t < 3; t++) this.resetPartial(t);
    const oldest = Math.max(1, snap.segment - this.log.maxFiles);
    let seg = openSegment(this.log, snap, id);
    let lost = lostAlready;
    for (let i = Math.max(id + 1, oldest); seg === null && i <= snap.segment; i++) {
      lost = true;
      seg = openSegment(this.log, snap, i);
    }
    if (lost && id > 0) this.gap = 'the log rotated past this reader before it read them';
    if (seg === null) {
      // Nothing to open (the live segment is being recreated): try again at the next append.
      this.epoch = snap.epoch;
      this.waitingFor = id;
      return;
    }
    this.seg = seg;
    this.record = 0;
    this.skip.fill(0);
    this.cutFrom = 0;
  }

  /** Read records from `this.record` (below `count`) into `out`, up to about `limit` bytes of lines. */
  private readRecords(seg: Segment, count: number, limit: number, out: BatchBuilder): void {
    const recs = seg.recordsAt(this.record, Math.min(INDEX_BLOCK, count - this.record));
    if (recs.length === 0) {
      this.record = count;
      return;
    }
    // One data read for as many records as fit in the budget (at least one).
    const first = recs[0] as IndexRecord;
    let n = 1;
    const budget = Math.max(limit - out.bytes, 1);
    while (n < recs.length && (recs[n] as IndexRecord).start + (recs[n] as IndexRecord).len - first.start <= budget)
      n++;
    const last = recs[n - 1] as IndexRecord;
    // Into a scratch buffer: the batch copies what it keeps, so a reader makes no garbage per read.
    const data = readInto(seg.dataFd, last.start + last.len - first.start, first.start);
    for (let i = 0; i < n; i++) {
      const rec = recs[i] as IndexRecord;
      this.take(this.record, rec, data, rec.start - first.start, out);
      this.record++;
      if (out.bytes >= limit) return;
    }
  }

  /** Turn one record into lines. `data[at, at + rec.len)` are its bytes. */
  private take(index: number, rec: IndexRecord, data: Buffer, at: number, out: BatchBuilder): void {
    const s = rec.stream > SYS ? SYS : rec.stream;
    if ((rec.flags & FLAG_CUT) !== 0) {
      if (index >= this.cutFrom) out.line(rec.time, s, this.takePartial(s));
      this.resetPartial(s);
      return;
    }
    const skip = (this.skip[s] as number) - rec.start;
    const from = at + Math.max(0, skip);
    const to = Math.min(at + rec.len, data.length);
    if (from >= to) return;
    const nl = data.indexOf(LF, from);
    if (nl === -1 || nl >= to) {
      this.addPartial(s, rec.time, data.subarray(from, to), out);
      return;
    }
    out.line(rec.time, s, this.takePartial(s, data.subarray(from, nl)));
    const lastNl = data.lastIndexOf(LF, to - 1);
    if (lastNl > nl) out.block(rec.time, s, data.subarray(nl + 1, lastNl + 1));
    if (lastNl + 1 < to) this.addPartial(s, rec.time, data.subarray(lastNl + 1, to), out);
  }

  private addPartial(s: number, time: number, bytes: Buffer, out: BatchBuilder): void {
    // Copied: the read buffer is not kept alive by a few bytes of it.
    (this.partial[s] as Buffer[]).push(Buffer.from(bytes));
    this.partialLen[s] = (this.partialLen[s] as number) + bytes.length;
    // The writer cuts lines at MAX_LINE_BYTES; a damaged file must not make this grow without bound.
    if ((this.partialLen[s] as number) > 2 * MAX_LINE_BYTES) out.line(time, s, this.takePartial(s));
  }

  private takePartial(s: number, tail?: Buffer): Buffer {
    const parts = this.partial[s] as Buffer[];
    if (parts.length === 0) return tail ?? Buffer.alloc(0);
    const all = Buffer.concat(tail === undefined ? parts : [...parts, tail]);
    this.resetPartial(s);
    return all;
  }

  private resetPartial(s: number): void {
    this.partial[s] = [];
    this.partialLen[s] = 0;
  }
}

/**
 * Collects lines into one batch: their bytes (copied at once into a reused buffer, as the read buffer
 * they come from is reused too), and runs of [time, stream, count].
 */
class BatchBuilder {
  private readonly runs: number[] = [];
  private buf = scratch('out', 0);
  bytes = 0;
  count = 0;

  line(time: number, stream: number, text: Buffer): void {
    this.append(text);
    this.append(NEWLINE);
    this.add(time, stream, 1);
  }

  /** Whole lines, each ending with '\n'. */
  block(time: number, stream: number, bytes: Buffer): void {
    this.append(bytes);
    this.add(time, stream, countLines(bytes));
  }

  private append(bytes: Buffer): void {
    const need = this.bytes + bytes.length;
    if (need > this.buf.length) {
      const grown = scratch('out', Math.max(need, this.buf.length * 2), this.bytes);
      this.buf = grown;
    }
    this.bytes += bytes.copy(this.buf, this.bytes);
  }

  private add(time: number, stream: number, n: number): void {
    const r = this.runs;
    const k = r.length;
    if (k > 0 && r[k - 3] === time && r[k - 2] === stream) r[k - 1] = (r[k - 1] as number) + n;
    else r.push(time, stream, n);
    this.count += n;
  }

  /** The batch; its data is a view of a buffer the next batch reuses (send it, i.e. copy it, at once). */
  finish(cursor: string): LogBatch {
    return { data: this.buf.subarray(0, this.bytes), runs: this.runs, count: this.count, cursor };
  }
}

const NEWLINE = Buffer.from('\n');

/** Reused buffers (the event loop runs one reader at a time, and nothing keeps them across calls). */
const scratches: Record<'in' | 'out', Buffer> = { in: Buffer.alloc(0), out: Buffer.alloc(0) };

/** A reused buffer of at least `len` bytes; growing it keeps its first `keep` bytes. */
function scratch(which: 'in' | 'out', len: number, keep = 0): Buffer {
  let buf = scratches[which];
  if (buf.length < len) {
    const grown = Buffer.allocUnsafe(Math.max(len, 256 * 1024));
    buf.copy(grown, 0, 0, keep);
    buf = grown;
    scratches[which] = buf;
  }
  return buf;
}

function readInto(fd: number, len: number, pos: number): Buffer {
  const buf = scratch('in', len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * The position of the n-th last line the service wrote (its '\n' or cut), found by reading the index and
 * data backwards from the end in bounded windows. Yields to the event loop between windows.
 */
async function findTailStart(log: LogFiles, snap: LogSnapshot, n: number): Promise<LogPosition> {
  let counted = 0;
  let uncounted = 0;
  let scanned = 0;
  // Small first: a tail of a few lines reads a few KiB, a tail of a million grows to SCAN_WINDOW reads.
  let window = 16 * 1024;
  const oldest = Math.max(1, snap.segment - log.maxFiles);
  for (let id = snap.segment; id >= oldest; id--) {
    const seg = openSegment(log, snap, id);
    if (seg === null) return { segment: id + 1, record: 0, offset: 0 };
    try {
      let r = seg.records(snap);
      while (r > 0) {
        const from = Math.max(0, r - INDEX_BLOCK);
        const recs = seg.recordsAt(from, r - from);
        let i = recs.length - 1;
        while (i >= 0) {
          const hiRec = recs[i] as IndexRecord;
          const hi = hiRec.start + hiRec.len;
          let j = i;
          while (j > 0 && hi - (recs[j - 1] as IndexRecord).start <= window) j--;
          window = Math.min(SCAN_WINDOW, window * 2);
          const lo = (recs[j] as IndexRecord).start;
          // Processed before the next await: the shared read buffer is not reused meanwhile.
          const data = readInto(seg.dataFd, hi - lo, lo);
          for (let k = i; k >= j; k--) {
            const rec = recs[k] as IndexRecord;
            const index = from + k;
            if ((rec.flags & FLAG_CUT) !== 0) {
              if (rec.stream !== SYS && ++counted === n) return { segment: id, record: index, offset: 0 };
              continue;
            }
            const base = rec.start - lo;
            if (rec.stream === SYS) {
              uncounted += countLines(data, base, base + rec.len);
              if (uncounted >= MAX_UNCOUNTED) return { segment: id, record: index, offset: 0 };
              continue;
            }
            let e = base + rec.len;
            while (e > base) {
              const nl = data.lastIndexOf(LF, e - 1);
              if (nl < base) break;
              if (++counted === n) return { segment: id, record: index, offset: nl - base };
              e = nl;
            }
          }
          scanned += hi - lo;
          if (scanned >= 4 * SCAN_WINDOW) {
            scanned = 0;
            await new Promise((resolve) => setImmediate(resolve));
          }
          i = j - 1;
        }
        r = from;
      }
    } finally {
      seg.close();
    }
  }
  return { segment: oldest, record: 0, offset: 0 };
}
