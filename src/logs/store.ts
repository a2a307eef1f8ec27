// The on-disk format of a service log. A log is a run of segments; each segment is two files:
//
//   NAME.log  the bytes the service wrote, exactly as read from its pipes (stdout and stderr chunks in
//             the order they were read), plus the supervisor's notes (whole lines);
//   NAME.idx  a 32-byte header, then one 32-byte record per stored chunk: when it was read, where its
//             bytes are in NAME.log, which stream, and where each stream's unfinished line began.
//
// Rotated segments are NAME.log.1 / NAME.idx.1 (newest) .. NAME.log.N / NAME.idx.N. Lines are never cut
// by the writer's JavaScript per line: it stores a chunk with one write per file, and readers rebuild
// lines (and each line's time: the time of the chunk that ended it) from the two files.
//
// A line ends at a '\n' of its stream or at a "cut" record: the writer adds one when a line reaches
// MAX_LINE_BYTES (the rest of it continues as a new line), when a segment is rotated, and when a stream
// ends without a final '\n'. So no line spans segments, and none is longer than MAX_LINE_BYTES.

import fs from 'node:fs';

/** The longest line; a longer one is stored as pieces of at most this many bytes. */
export const MAX_LINE_BYTES = 64 * 1024;

export const HEADER_BYTES = 32;
export const RECORD_BYTES = 32;
const MAGIC = 'ADILOG01';

/** "No unfinished line" in a record's open fields. */
export const NONE = 0xffffffff;

/** A cut record (no bytes): the stream's unfinished line ends here. */
export const FLAG_CUT = 1;

export type StreamName = 'out' | 'err' | 'sys';
export const STREAM_NAMES: readonly StreamName[] = ['out', 'err', 'sys'];
export const OUT = 0;
export const ERR = 1;
export const SYS = 2;

export interface IndexRecord {
  /** When the chunk was read (ms since the epoch). */
  time: number;
  /** Offset of its bytes in the segment's data file. */
  start: number;
  len: number;
  stream: number;
  flags: number;
  /** Offset where stdout's / stderr's unfinished line began before this chunk, or NONE. */
  openOut: number;
  openErr: number;
}

export interface SegmentHeader {
  /** Segments are numbered from 1; rotation makes the next live segment id + 1. */
  id: number;
  /** Random per log: a cursor of a log deleted and made again is not taken for one of the new log. */
  epoch: string;
}

export function encodeRecord(buf: Buffer, at: number, r: IndexRecord): void {
  buf.writeDoubleLE(r.time, at);
  buf.writeUInt32LE(r.start, at + 8);
  buf.writeUInt32LE(r.len, at + 12);
  buf.writeUInt32LE(r.openOut, at + 16);
  buf.writeUInt32LE(r.openErr, at + 20);
  buf[at + 24] = r.stream;
  buf[at + 25] = r.flags;
  buf.fill(0, at + 26, at + RECORD_BYTES);
}

export function decodeRecord(buf: Buffer, at: number): IndexRecord {
  return {
    time: buf.readDoubleLE(at),
    start: buf.readUInt32LE(at + 8),
    len: buf.readUInt32LE(at + 12),
    openOut: buf.readUInt32LE(at + 16),
    openErr: buf.readUInt32LE(at + 20),
    stream: buf[at + 24] as number,
    flags: buf[at + 25] as number,
  };
}

export function encodeHeader(h: SegmentHeader): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeDoubleLE(h.id, 8);
  buf.write(h.epoch, 16, 8, 'hex');
  buf.writeDoubleLE(Date.now(), 24);
  return buf;
}

/** The header, or null if the bytes are not one (an old-format or foreign file). */
export function decodeHeader(buf: Buffer): SegmentHeader | null {
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 8) !== MAGIC) return null;
  const id = buf.readDoubleLE(8);
  if (!Number.isSafeInteger(id) || id < 1) return null;
  return { id, epoch: buf.toString('hex', 16, 24) };
}

export function newEpoch(): string {
  return Buffer.from(Array.from({ length: 8 }, () => Math.floor(Math.random() * 256))).toString('hex');
}

/** Paths of segment `k` back from the live one (0: live). */
export function segmentPaths(base: string, k: number): { data: string; index: string } {
  return k === 0
    ? { data: `${base}.log`, index: `${base}.idx` }
    : { data: `${base}.log.${k}`, index: `${base}.idx.${k}` };
}

/** Read exactly `len` bytes at `pos` (fewer only at end of file). */
export function readAt(fd: number, len: number, pos: number): Buffer {
  const buf = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got === len ? buf : buf.subarray(0, got);
}

export function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}
