// MessagePack encoding of protocol messages (the codec itself is msgpack.ts): plain MessagePack, so any
// msgpack library in any language reads and writes these frames. Binary fields travel as `bin` and
// decode as views into the received frame (no copy).

import { AdiError } from '../core/errors.js';
import { HEADER_BYTES } from './framing.js';
import { decodeRange as decodeValue, encode as encodeValue, encodeWithHeadroom, MsgpackError } from './msgpack.js';

export function encode(message: unknown): Buffer {
  return encodeValue(message);
}

/**
 * Encode and length-prefix one message. The encoder leaves room for the header in front of the body
 * it writes, so the frame is built in place: no second buffer, no copy. The result is a view into the
 * encoder's output pool, which is never written over (later messages go after it, or into a new one).
 */
export function encodeFrame(message: unknown, maxFrame: number): Buffer {
  let out: Buffer;
  try {
    out = encodeWithHeadroom(message, HEADER_BYTES);
  } catch (err) {
    if (err instanceof MsgpackError) throw new AdiError('BAD_REQUEST', `Cannot encode the message: ${err.message}`);
    throw err;
  }
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

/** Decode the frame body `buf[start, end)` (see FrameDecoder.feed) without making a Buffer of it. */
export function decodeRange(buf: Buffer, start: number, end: number): unknown {
  if (end <= start) throw new AdiError('BAD_FRAME', 'Empty frame: a frame holds one MessagePack value.');
  try {
    return decodeValue(buf, start, end);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new AdiError('BAD_FRAME', `Invalid MessagePack: ${reason.slice(0, 200)}`);
  }
}
