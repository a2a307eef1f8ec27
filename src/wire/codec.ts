// MessagePack encoding of protocol messages. Plain MessagePack only: msgpackr's record extension is
// off, so any msgpack library in any language reads and writes these frames. Binary fields travel as
// `bin` and decode as views into the received frame (no copy).

import { Packr } from 'msgpackr';
import { AdiError } from '../errors.js';
import { frame } from './framing.js';

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

/** Encode and length-prefix one message. */
export function encodeFrame(message: unknown, maxFrame: number): Buffer {
  const body = encode(message);
  if (body.length > maxFrame) {
    throw new AdiError('FRAME_TOO_LARGE', `Message of ${body.length} bytes exceeds the maximum frame of ${maxFrame} bytes.`);
  }
  return frame(body);
}

/** Decode one frame body. Any malformed input becomes BAD_FRAME; nothing else escapes. */
export function decode(body: Buffer): unknown {
  if (body.length === 0) throw new AdiError('BAD_FRAME', 'Empty frame: a frame holds one MessagePack value.');
  try {
    return packr.unpack(body);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new AdiError('BAD_FRAME', `Invalid MessagePack: ${reason.slice(0, 200)}`);
  }
}
