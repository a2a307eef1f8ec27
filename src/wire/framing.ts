// Length-prefixed frames: a u32 little-endian body length, then the body. The length is checked against
// the maximum before any byte of the body is kept, and bytes are held only as they arrive (a 16 MiB
// prefix followed by silence costs the daemon four bytes, not 16 MiB).
//
// Hot path: a socket read usually holds whole frames (one, or a burst of pipelined ones). Those are
// handed on as ranges of the read buffer itself, with no copy and no Buffer object per frame; only a
// frame split across reads is gathered into a buffer of its own.

import { AdiError } from '../core/errors.js';

export const HEADER_BYTES = 4;

/** Called with each complete frame body, as `buf[start, end)`. */
export type FrameRangeHandler = (buf: Buffer, start: number, end: number) => void;

export class FrameDecoder {
  /** Bytes of the frame in progress (header bytes while bodyLength < 0, body bytes after). */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being read, or -1 while waiting for its header. */
  private bodyLength = -1;

  constructor(private readonly maxFrame: number) {}

  /** Bytes held for a frame not yet complete. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Whether a frame has begun and not completed: bytes are held, or a whole header has been read and
   * its body has not come yet (zero bytes held, but a client that sends a header and then goes silent
   * is mid-frame all the same).
   */
  get midFrame(): boolean {
    return this.buffered > 0 || this.bodyLength >= 0;
  }

  /**
   * Feed bytes as they come off the socket; `onFrame` is called for each complete body, in order.
   * Throws FRAME_TOO_LARGE when a header announces more than the maximum; the stream is then unusable.
   */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    this.feed(chunk, (buf, start, end) => onFrame(start === 0 && end === buf.length ? buf : buf.subarray(start, end)));
  }

  /**
   * Like push, but each body is given as a range of a buffer (the chunk itself when the frame came in
   * one read). The range is valid during the call; the buffer is not reused by the decoder.
   */
  feed(chunk: Buffer, onFrame: FrameRangeHandler): void {
    const n = chunk.length;
    if (n === 0) return;
    let at = 0;
    if (this.midFrame) {
      at = this.continueFrame(chunk, onFrame);
      if (at === n) return;
    }
    while (n - at >= HEADER_BYTES) {
      const length = chunk.readUInt32LE(at);
      this.checkLength(length);
      const end = at + HEADER_BYTES + length;
      if (end > n) break;
      onFrame(chunk, at + HEADER_BYTES, end);
      at = end;
    }
    if (at === n) return;
    // The start of a frame that continues in a later read.
    if (n - at >= HEADER_BYTES) {
      this.bodyLength = chunk.readUInt32LE(at);
      at += HEADER_BYTES;
    }
    if (at < n) {
      this.chunks.push(chunk.subarray(at));
      this.buffered = n - at;
    }
  }

  private checkLength(length: number): void {
    if (length > this.maxFrame) {
      this.chunks = [];
      this.buffered = 0;
      this.bodyLength = -1;
      throw new AdiError('FRAME_TOO_LARGE', `Frame of ${length} bytes exceeds the maximum of ${this.maxFrame} bytes.`);
    }
  }

  /** Take bytes of `chunk` for the frame in progress; returns how many were used. */
  private continueFrame(chunk: Buffer, onFrame: FrameRangeHandler): number {
    let at = 0;
    if (this.bodyLength < 0) {
      const need = HEADER_BYTES - this.buffered;
      if (chunk.length < need) {
        this.chunks.push(chunk);
        this.buffered += chunk.length;
        return chunk.length;
      }
      const header = Buffer.concat([...this.chunks, chunk.subarray(0, need)], HEADER_BYTES);
      this.chunks = [];
      this.buffered = 0;
      at = need;
      const length = header.readUInt32LE(0);
      this.checkLength(length);
      this.bodyLength = length;
    }
    const want = this.bodyLength - this.buffered;
    const available = chunk.length - at;
    if (available < want) {
      if (available > 0) {
        this.chunks.push(chunk.subarray(at));
        this.buffered += available;
      }
      return chunk.length;
    }
    const held = this.chunks;
    const length = this.bodyLength;
    this.chunks = [];
    this.buffered = 0;
    this.bodyLength = -1;
    if (held.length === 0) {
      onFrame(chunk, at, at + want);
    } else {
      held.push(chunk.subarray(at, at + want));
      onFrame(Buffer.concat(held, length), 0, length);
    }
    return at + want;
  }
}

/** Prefix a body with its length. */
export function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32LE(body.length, 0);
  out.set(body, HEADER_BYTES);
  return out;
}
