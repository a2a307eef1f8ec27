// The MessagePack codec against msgpackr, a complete implementation, as the oracle: what one encodes
// the other decodes to the same value, both ways. Plus the hostile-input rules of the decoder.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { decodeRange, encode, encodeWithHeadroom, MAX_DEPTH, MsgpackError } from '../../src/wire/msgpack.js';

const oracle = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  int64AsType: 'number',
} as ConstructorParameters<typeof Packr>[0]);

const decode = (buf: Buffer): unknown => decodeRange(buf, 0, buf.length);

/** Protocol values: what the codec is for. Binary as Buffer, which is how both sides decode it. */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  any: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.array(tie('any'), { maxLength: 20 }),
    // msgpackr renames a `__proto__` key; ours keeps it as a plain property (tested below).
    fc.dictionary(
      fc.string({ maxLength: 12 }).filter((k) => k !== '__proto__'),
      tie('any'),
      { maxKeys: 20 },
    ),
  ),
})).any;

/** deepEqual that treats Buffer and Uint8Array of the same bytes alike. */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bin: [...v] };
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

describe('msgpack codec', () => {
  test('msgpackr decodes what it encodes, to the same value', () => {
    fc.assert(
      fc.property(value, (v) => {
        assert.deepEqual(normalize(oracle.unpack(encode(v))), normalize(v));
      }),
      { numRuns: 1000 },
    );
  });

  test('it decodes what msgpackr encodes, to the same value', () => {
    fc.assert(
      fc.property(value, (v) => {
        assert.deepEqual(normalize(decode(oracle.pack(v))), normalize(v));
      }),
      { numRuns: 1000 },
    );
  });

  test('every integer width round-trips, both ways', () => {
    const edges = [
      0,
      1,
      31,
      32,
      127,
      128,
      255,
      256,
      65535,
      65536,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 53 - 1,
      -1,
      -32,
      -33,
      -128,
      -129,
      -32768,
      -32769,
      -(2 ** 31),
      -(2 ** 31) - 1,
      -(2 ** 53) + 1,
    ];
    for (const n of edges) {
      assert.equal(decode(encode(n)), n, `ours ${n}`);
      assert.equal(decode(oracle.pack(n)), n, `msgpackr's ${n}`);
      assert.equal(oracle.unpack(encode(n)), n, `msgpackr reads ours ${n}`);
    }
  });

  test('strings of every header size, ASCII and not, round-trip', () => {
    for (const n of [0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536]) {
      for (const s of ['a'.repeat(n), 'é'.repeat(n), '😀'.repeat(Math.ceil(n / 4))]) {
        assert.equal(decode(encode(s)), s);
        assert.equal(decode(oracle.pack(s)), s);
        assert.equal(oracle.unpack(encode(s)), s);
      }
    }
  });

  test('the protocol example frame is byte-exact (docs/protocol.md)', () => {
    assert.equal(encode({ id: 1, type: 'Ping' }).toString('hex'), '82a26964' + '01a474797065a450696e67');
  });

  test('undefined properties are left out; undefined elsewhere is nil', () => {
    assert.deepEqual(decode(encode({ a: 1, b: undefined })), { a: 1 });
    assert.deepEqual(decode(encode([undefined])), [null]);
  });

  test('results are never written over by later messages, and a message larger than the pool is whole', () => {
    const first = encodeWithHeadroom({ a: 'x'.repeat(100) }, 4);
    const copy = Buffer.from(first);
    for (let i = 0; i < 2000; i++) encode({ i, s: 'y'.repeat(i % 300) });
    const big = encode({ s: 'z'.repeat(200_000) });
    assert.deepEqual(first, copy);
    assert.deepEqual(decode(big), { s: 'z'.repeat(200_000) });
  });

  test('what cannot be encoded is a MsgpackError', () => {
    assert.throws(() => encode({ f: () => 1 }), MsgpackError);
    assert.throws(() => encode(Symbol('x')), MsgpackError);
    assert.throws(() => encode(2n ** 64n), MsgpackError);
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_DEPTH; i++) deep = [deep];
    assert.throws(() => encode(deep), /nesting deeper/);
  });
});

describe('msgpack decoder on hostile input', () => {
  test('random bytes decode to a value or a MsgpackError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        try {
          decode(Buffer.from(bytes));
        } catch (err) {
          assert.ok(err instanceof MsgpackError, String(err));
        }
      }),
      { numRuns: 5000 },
    );
  });

  test('every truncation of a valid message is refused', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = encode(v);
        for (let cut = 0; cut < bytes.length; cut++) {
          assert.throws(() => decode(bytes.subarray(0, cut)), MsgpackError);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('a huge declared count with few bytes is refused before anything is allocated', () => {
    assert.throws(() => decode(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01])), /truncated/);
    assert.throws(() => decode(Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 0x01])), /truncated/);
    assert.throws(() => decode(Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff])), /truncated/);
  });

  test('nesting is bounded', () => {
    const deep = Buffer.alloc(100_000, 0x91);
    assert.throws(() => decode(deep), /nesting deeper/);
    const ok = Buffer.concat([Buffer.alloc(MAX_DEPTH, 0x91), Buffer.from([0x01])]);
    assert.doesNotThrow(() => decode(ok));
  });

  test('extension types, 0xc1, non-string keys and trailing bytes are refused', () => {
    assert.throws(() => decode(oracle.pack(new Date(0))), /extension type/);
    assert.throws(() => decode(Buffer.from([0xc1])), /never used/);
    assert.throws(() => decode(Buffer.from([0x81, 0x01, 0x02])), /not a string/);
    assert.throws(() => decode(Buffer.from([0x01, 0x02])), /trailing/);
  });

  test('a __proto__ key is an ordinary property, not a prototype', () => {
    const v = decode(Buffer.from('81a95f5f70726f746f5f5f81a178c3', 'hex')) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['__proto__']);
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
  });

  test('64-bit integers: exact numbers within ±2^53, bigint beyond (validation refuses those)', () => {
    assert.equal(decode(Buffer.from('cf0000000000000005', 'hex')), 5);
    assert.equal(decode(Buffer.from('d3fffffffffffffffb', 'hex')), -5);
    assert.equal(decode(Buffer.from('cf0020000000000000', 'hex')), 2n ** 53n);
    assert.equal(decode(Buffer.from('d3ffe0000000000000', 'hex')), -(2n ** 53n));
  });

  test('binary decodes as a view into the input (no copy)', () => {
    const buf = Buffer.from([0xc4, 0x02, 0xaa, 0xbb]);
    const v = decode(buf) as Buffer;
    assert.equal(v.buffer, buf.buffer);
    assert.deepEqual([...v], [0xaa, 0xbb]);
  });
});
