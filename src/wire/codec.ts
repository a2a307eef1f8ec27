// MessagePack encoding of protocol messages. Plain MessagePack only: msgpackr's record extension is
// off, so any msgpack library in any language reads and writes these frames. Binary fields travel as
// `bin` and decode as views into the received frame (no copy).

import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { AdiError } from '../errors.js';
import { HEADER_BYTES } from './framing.js';

// msgpackr's type definitions lag behind its options (skipValues), hence the widened type.
const packr = new Packr(<ConstructorParameters<typeof Packr>[0]>{
  useRecords: false,
  mapsAsObjects: true,
  // An optional field left undefined is simply absent (msgpackr would otherwise write an extension).
  skipValues: [undefined],
  // 64-bit integers decode as bigint (msgpackr's default), which validation rejects: no silent rounding.
  variableMapSize: true,
});

export function encode(message: unknown): Buffer {
  return packr.pack(message);
}

/**
 * Encode and length-prefix one message. msgpackr leaves room for the header in front of the body it
 * writes, so the frame is built in place: no second buffer, no copy. The result is a view into
 * msgpackr's output buffer, which it never writes over (later messages go after it, or into a new one).
 */
export function encodeFrame(message: unknown, maxFrame: number): Buffer {
  const out = packr.pack(message, RESERVE_START_SPACE | HEADER_BYTES);
  const length = out.length - HEADER_BYTES;
  if (length > maxFrame) {
    throw new AdiError('FRAME_TOO_LARGE', `Message of ${length} bytes exceeds the maximum frame of ${maxFrame} bytes.`);
  }
  out.writeUInt32LE(length, 0);
  return out;
}

/** Decode one frame body. Any malformed input becomes BAD_FRAME; nothing else escapes. */
export function decode(body: Buffer): unknown {
  return decodeRange(body, 0, body.length);
}

// Reused for every decode: unpack reads it synchronously and keeps no reference.
const range = { start: 0, end: 0 };

/**
 * Decode the frame body `buf[start, end)` (see FrameDecoder.feed) without making a Buffer of it;
 * msgpackr then caches its DataView on the read buffer once, not on a new object per frame.
 */
export function decodeRange(buf: Buffer, start: number, end: number): unknown {
  if (end <= start) throw new AdiError('BAD_FRAME', 'Empty frame: a frame holds one MessagePack value.');
  range.start = start;
  range.end = end;
  try {
    return packr.unpack(buf, range);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new AdiError('BAD_FRAME', `Invalid MessagePack: ${reason.slice(0, 200)}`);
  }
}
