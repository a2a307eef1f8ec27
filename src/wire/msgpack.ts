// Plain MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md), just what the protocol
// needs: nil, booleans, integers, floats, strings, binary, arrays and string-keyed maps. Extension types
// are refused (docs/protocol.md, section 2).
//
// Our own rather than msgpackr: measured, loading and first use of msgpackr (80 KB of code) was about
// 6-8 ms of every `adi` command's start, a quarter of what the CLI adds to `node -e 0`; this module is
// a few KB. msgpackr stays the oracle of the property tests (test/wire/msgpack.test.ts): each encodes
// what the other decodes.
//
// Decoding is defensive: every length is checked against the bytes that are there before anything is
// allocated, nesting is bounded, and a map key `__proto__` becomes an ordinary property. Binary values
// decode as views into the input (no copy). Integers outside ±2^53 decode as bigint, which validation
// refuses: no silent rounding.

export class MsgpackError extends Error {}

/** Nesting deeper than this is refused: protocol messages nest a few levels, a hostile frame millions. */
export const MAX_DEPTH = 64;

// ---------------------------------------------------------------------------------------------------
// Encoding

/** Output pool: results are views into it that are never written over (the next message goes after). */
let pool = Buffer.allocUnsafe(64 * 1024);
let pos = 0;
/** Where the message being written starts in `pool`. */
let start = 0;

function ensure(bytes: number): void {
  if (pos + bytes <= pool.length) return;
  // A new pool; the part of the message written so far moves with it.
  const written = pos - start;
  const next = Buffer.allocUnsafe(Math.max(64 * 1024, (written + bytes) * 2));
  pool.copy(next, 0, start, pos);
  pool = next;
  start = 0;
  pos = written;
}

/**
 * Encode `value` after `headroom` bytes left for the caller (a frame's length prefix). Returns a view
 * of headroom + body. Object properties whose value is undefined are left out; undefined elsewhere is
 * nil.
 */
export function encodeWithHeadroom(value: unknown, headroom: number): Buffer {
  start = pos;
  try {
    ensure(headroom);
    pos += headroom;
    write(value, 0);
    return pool.subarray(start, pos);
  } catch (err) {
    pos = start;
    throw err;
  } finally {
    // Keep the next message 8-byte aligned; start over in a fresh pool when little is left.
    pos = (pos + 7) & ~7;
    if (pos > pool.length - 1024) {
      pool = Buffer.allocUnsafe(pool.length);
      pos = 0;
    }
  }
}

export function encode(value: unknown): Buffer {
  return encodeWithHeadroom(value, 0);
}

function write(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      writeString(value);
      return;
    case 'number':
      writeNumber(value);
      return;
    case 'boolean':
      ensure(1);
      pool[pos++] = value ? 0xc3 : 0xc2;
      return;
    case 'undefined':
      ensure(1);
      pool[pos++] = 0xc0;
      return;
    case 'bigint':
      writeBigInt(value);
      return;
    case 'object':
      if (value === null) {
        ensure(1);
        pool[pos++] = 0xc0;
        return;
      }
      if (depth >= MAX_DEPTH) throw new MsgpackError(`nesting deeper than ${MAX_DEPTH}`);
      if (Array.isArray(value)) writeArray(value, depth);
      else if (value instanceof Uint8Array) writeBinary(value);
      else writeMap(value as Record<string, unknown>, depth);
      return;
    default:
      throw new MsgpackError(`cannot encode a ${typeof value}`);
  }
}

function writeString(s: string): void {
  const n = s.length;
  if (n < 32) {
    // Short strings (keys, names, states): written by hand when plain ASCII, no native call.
    ensure(1 + n);
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      pool[pos + 1 + i] = c;
    }
    if (i === n) {
      pool[pos] = 0xa0 | n;
      pos += 1 + n;
      return;
    }
  }
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes < 32) {
    ensure(1 + bytes);
    pool[pos++] = 0xa0 | bytes;
  } else if (bytes < 0x100) {
    ensure(2 + bytes);
    pool[pos++] = 0xd9;
    pool[pos++] = bytes;
  } else if (bytes < 0x10000) {
    ensure(3 + bytes);
    pool[pos++] = 0xda;
    pool.writeUInt16BE(bytes, pos);
    pos += 2;
  } else {
    ensure(5 + bytes);
    pool[pos++] = 0xdb;
    pool.writeUInt32BE(bytes, pos);
    pos += 4;
  }
  pos += pool.write(s, pos, bytes, 'utf8');
}

function writeNumber(v: number): void {
  ensure(9);
  if (!Number.isInteger(v)) {
    pool[pos++] = 0xcb;
    pool.writeDoubleBE(v, pos);
    pos += 8;
  } else if (v >= 0) {
    if (v < 0x80) {
      pool[pos++] = v;
    } else if (v < 0x100) {
      pool[pos++] = 0xcc;
      pool[pos++] = v;
    } else if (v < 0x10000) {
      pool[pos++] = 0xcd;
      pool.writeUInt16BE(v, pos);
      pos += 2;
    } else if (v < 0x100000000) {
      pool[pos++] = 0xce;
      pool.writeUInt32BE(v, pos);
      pos += 4;
    } else if (v <= Number.MAX_SAFE_INTEGER) {
      pool[pos++] = 0xcf;
      pool.writeUInt32BE(Math.floor(v / 0x100000000), pos);
      pool.writeUInt32BE(v >>> 0, pos + 4);
      pos += 8;
    } else {
      // An integral double beyond 2^53 (or infinity-adjacent): kept exact as a float.
      pool[pos++] = 0xcb;
      pool.writeDoubleBE(v, pos);
      pos += 8;
    }
  } else if (v >= -32) {
    pool[pos++] = v & 0xff;
  } else if (v >= -0x80) {
    pool[pos++] = 0xd0;
    pool.writeInt8(v, pos);
    pos += 1;
  } else if (v >= -0x8000) {
    pool[pos++] = 0xd1;
    pool.writeInt16BE(v, pos);
    pos += 2;
  } else if (v >= -0x80000000) {
    pool[pos++] = 0xd2;
    pool.writeInt32BE(v, pos);
    pos += 4;
  } else if (v >= Number.MIN_SAFE_INTEGER) {
    pool[pos++] = 0xd3;
    pool.writeBigInt64BE(BigInt(v), pos);
    pos += 8;
  } else {
    pool[pos++] = 0xcb;
    pool.writeDoubleBE(v, pos);
    pos += 8;
  }
}

function writeBigInt(v: bigint): void {
  ensure(9);
  if (v >= 0n && v < 0x10000000000000000n) {
    pool[pos++] = 0xcf;
    pool.writeBigUInt64BE(v, pos);
  } else if (v < 0n && v >= -0x8000000000000000n) {
    pool[pos++] = 0xd3;
    pool.writeBigInt64BE(v, pos);
  } else {
    throw new MsgpackError('a bigint beyond 64 bits');
  }
  pos += 8;
}

function writeBinary(v: Uint8Array): void {
  const n = v.byteLength;
  ensure(5 + n);
  if (n < 0x100) {
    pool[pos++] = 0xc4;
    pool[pos++] = n;
  } else if (n < 0x10000) {
    pool[pos++] = 0xc5;
    pool.writeUInt16BE(n, pos);
    pos += 2;
  } else {
    pool[pos++] = 0xc6;
    pool.writeUInt32BE(n, pos);
    pos += 4;
  }
  pool.set(v, pos);
  pos += n;
}

function writeArray(v: readonly unknown[], depth: number): void {
  writeHeader(v.length, 0x90, 0xdc);
  for (let i = 0; i < v.length; i++) write(v[i], depth + 1);
}

function writeMap(v: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(v);
  let count = 0;
  for (let i = 0; i < keys.length; i++) if (v[keys[i] as string] !== undefined) count++;
  writeHeader(count, 0x80, 0xde);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const item = v[key];
    if (item === undefined) continue;
    writeString(key);
    write(item, depth + 1);
  }
}

/** fix (count < 16), 16-bit or 32-bit count: `fix` | count, `wide16`, `wide16` + 1. */
function writeHeader(count: number, fix: number, wide16: number): void {
  ensure(5);
  if (count < 16) {
    pool[pos++] = fix | count;
  } else if (count < 0x10000) {
    pool[pos++] = wide16;
    pool.writeUInt16BE(count, pos);
    pos += 2;
  } else {
    pool[pos++] = wide16 + 1;
    pool.writeUInt32BE(count, pos);
    pos += 4;
  }
}

// ---------------------------------------------------------------------------------------------------
// Decoding

let src: Buffer = Buffer.alloc(0);
let at = 0;
let end = 0;

/** Decode exactly one value from `buf[from, to)`; trailing bytes are an error. */
export function decodeRange(buf: Buffer, from: number, to: number): unknown {
  src = buf;
  at = from;
  end = to;
  try {
    const value = read(0);
    if (at !== end) throw new MsgpackError(`${end - at} trailing bytes after the value`);
    return value;
  } finally {
    src = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);

function need(bytes: number): void {
  if (end - at < bytes) throw new MsgpackError(`truncated: ${bytes} more bytes needed at offset ${at}`);
}

function read(depth: number): unknown {
  need(1);
  const b = src[at++] as number;
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b >= 0xa0 && b < 0xc0) return readString(b & 0x1f);
  if (b >= 0x90 && b < 0xa0) return readArray(b & 0x0f, depth);
  if (b >= 0x80 && b < 0x90) return readMap(b & 0x0f, depth);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return readBinary(readUint(1));
    case 0xc5:
      return readBinary(readUint(2));
    case 0xc6:
      return readBinary(readUint(4));
    case 0xca:
      return fixed(4, float32);
    case 0xcb:
      return fixed(8, float64);
    case 0xcc:
      return readUint(1);
    case 0xcd:
      return readUint(2);
    case 0xce:
      return readUint(4);
    case 0xcf:
      return exact(fixed(8, uint64));
    case 0xd0: {
      need(1);
      return src.readInt8(at++);
    }
    case 0xd1:
      return fixed(2, int16);
    case 0xd2:
      return fixed(4, int32);
    case 0xd3:
      return exact(fixed(8, int64));
    case 0xd9:
      return readString(readUint(1));
    case 0xda:
      return readString(readUint(2));
    case 0xdb:
      return readString(readUint(4));
    case 0xdc:
      return readArray(readUint(2), depth);
    case 0xdd:
      return readArray(readUint(4), depth);
    case 0xde:
      return readMap(readUint(2), depth);
    case 0xdf:
      return readMap(readUint(4), depth);
    default:
      // 0xc1 (never used) and the extension types 0xc7-0xc9, 0xd4-0xd8.
      throw new MsgpackError(
        b === 0xc1 ? 'byte 0xc1 is never used' : `extension type 0x${b.toString(16)} is not part of the protocol`,
      );
  }
}

// Fixed-width readers at an offset of the current input.
const float32 = (o: number): number => src.readFloatBE(o);
const float64 = (o: number): number => src.readDoubleBE(o);
const int16 = (o: number): number => src.readInt16BE(o);
const int32 = (o: number): number => src.readInt32BE(o);
const int64 = (o: number): bigint => src.readBigInt64BE(o);
const uint64 = (o: number): bigint => src.readBigUInt64BE(o);

function fixed<T>(bytes: number, get: (offset: number) => T): T {
  need(bytes);
  const v = get(at);
  at += bytes;
  return v;
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/** A 64-bit integer as a number when it is exact, else as bigint (which validation refuses). */
function exact(v: bigint): number | bigint {
  return v >= -MAX_EXACT && v <= MAX_EXACT ? Number(v) : v;
}

function readUint(bytes: 1 | 2 | 4): number {
  need(bytes);
  const v = bytes === 1 ? (src[at] as number) : bytes === 2 ? src.readUInt16BE(at) : src.readUInt32BE(at);
  at += bytes;
  return v;
}

function readString(n: number): string {
  need(n);
  const from = at;
  at += n;
  if (n <= 8) {
    // Short strings (states, names, values): by hand when plain ASCII, one flat string, no native call.
    let ascii = true;
    for (let i = from; i < at; i++) {
      if ((src[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      const b = src;
      switch (n) {
        case 0:
          return '';
        case 1:
          return String.fromCharCode(b[from] as number);
        case 2:
          return String.fromCharCode(b[from] as number, b[from + 1] as number);
        case 3:
          return String.fromCharCode(b[from] as number, b[from + 1] as number, b[from + 2] as number);
        case 4:
          return String.fromCharCode(
            b[from] as number,
            b[from + 1] as number,
            b[from + 2] as number,
            b[from + 3] as number,
          );
        default:
          return b.toString('latin1', from, at);
      }
    }
  }
  return src.toString('utf8', from, at);
}

/**
 * Map keys repeat (every ServiceInfo of a listing has the same eleven): a small cache, indexed by the
 * key's length and first and last bytes, of the strings made from short keys, checked byte by byte.
 */
const KEY_CACHE_SIZE = 4096;
const keyCache: Array<{ bytes: Uint8Array; key: string } | undefined> = new Array(KEY_CACHE_SIZE);

function readKey(n: number): string {
  if (n === 0 || n > 24) return readString(n);
  need(n);
  const first = src[at] as number;
  const last = src[at + n - 1] as number;
  const slot = ((n << 7) ^ (first << 3) ^ last ^ ((src[at + (n >> 1)] as number) << 5)) & (KEY_CACHE_SIZE - 1);
  const hit = keyCache[slot];
  if (hit !== undefined && hit.bytes.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (hit.bytes[i] !== src[at + i]) {
        same = false;
        break;
      }
    }
    if (same) {
      at += n;
      return hit.key;
    }
  }
  const bytes = Uint8Array.prototype.slice.call(src, at, at + n);
  const key = readString(n);
  keyCache[slot] = { bytes, key };
  return key;
}

function readBinary(n: number): Buffer {
  need(n);
  const v = src.subarray(at, at + n);
  at += n;
  return v;
}

function readArray(n: number, depth: number): unknown[] {
  if (depth >= MAX_DEPTH) throw new MsgpackError(`nesting deeper than ${MAX_DEPTH}`);
  // Each element takes at least one byte: a count the input cannot hold is refused before allocating.
  need(n);
  const out = new Array<unknown>(n);
  for (let i = 0; i < n; i++) out[i] = read(depth + 1);
  return out;
}

function readMap(n: number, depth: number): Record<string, unknown> {
  if (depth >= MAX_DEPTH) throw new MsgpackError(`nesting deeper than ${MAX_DEPTH}`);
  need(2 * n);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    need(1);
    const b = src[at++] as number;
    let key: string;
    if (b >= 0xa0 && b < 0xc0) key = readKey(b & 0x1f);
    else if (b === 0xd9) key = readKey(readUint(1));
    else if (b === 0xda) key = readString(readUint(2));
    else if (b === 0xdb) key = readString(readUint(4));
    else throw new MsgpackError('a map key that is not a string');
    const value = read(depth + 1);
    if (key === '__proto__')
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  return out;
}
