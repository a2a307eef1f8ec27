// Length-prefixed frames: a u32 little-endian body length, then the body. The length is checked against
// the maximum before any byte of the body is kept, and bytes are held only as they arrive (a 16 MiB
// prefix followed by silence costs the daemon four bytes, not 16 MiB).

import { AdiError } from '../errors.js';

export const HEADER_BYTES = 4;

export class FrameDecoder {
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
   * Feed bytes as they come off the socket; `onFrame` is called for each complete body, in order.
   * Throws FRAME_TOO_LARGE when a header announces more than the maximum; the stream is then unusable.
   */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.bodyLength < 0) {
        if (this.buffered < HEADER_BYTES) return;
        const length = this.take(HEADER_BYTES).readUInt32LE(0);
        if (length > this.maxFrame) {
          this.chunks = [];
          this.buffered = 0;
          throw new AdiError('FRAME_TOO_LARGE', `Frame of ${length} bytes exceeds the maximum of ${this.maxFrame} bytes.`);
        }
        this.bodyLength = length;
      }
      if (this.buffered < this.bodyLength) return;
      const body = this.take(this.bodyLength);
      this.bodyLength = -1;
      onFrame(body);
    }
  }

  /** Remove and return the first n buffered bytes; a view when they sit in one chunk. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0] as Buffer;
      const want = n - filled;
      if (head.length <= want) {
        head.copy(out, filled);
        filled += head.length;
        this.chunks.shift();
      } else {
        head.copy(out, filled, 0, want);
        this.chunks[0] = head.subarray(want);
        filled += want;
      }
    }
    return out;
  }
}

/** Prefix a body with its length. */
export function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt32LE(body.length, 0);
  out.set(body, HEADER_BYTES);
  return out;
}
