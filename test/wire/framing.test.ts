import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AdiError } from '../../src/core/errors.js';
import { FrameDecoder, frame } from '../../src/wire/framing.js';

function decodeAll(decoder: FrameDecoder, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) decoder.push(c, (body) => out.push(Buffer.from(body)));
  return out;
}

/** Split a buffer at the given cut points. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

describe('FrameDecoder', () => {
  test('any chunking of a frame stream yields the same frames, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(bodies.map((b) => frame(b)));
          const frames = decodeAll(new FrameDecoder(1024), split(stream, cuts));
          assert.deepEqual(
            frames.map((f) => [...f]),
            bodies.map((b) => [...b]),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  test('a header over the maximum is refused before its body arrives', () => {
    const decoder = new FrameDecoder(16 * 1024 * 1024);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(0xffffffff, 0);
    assert.throws(
      () => decoder.push(header, () => assert.fail('no frame expected')),
      (err: unknown) => err instanceof AdiError && err.code === 'FRAME_TOO_LARGE' && /4294967295/.test(err.message),
    );
    assert.equal(decoder.pendingBytes, 0);
  });

  test('a frame of exactly the maximum passes; one byte more does not', () => {
    const ok = new FrameDecoder(10);
    assert.deepEqual(
      decodeAll(ok, [frame(Buffer.alloc(10, 7))]).map((f) => f.length),
      [10],
    );
    assert.throws(() => new FrameDecoder(10).push(frame(Buffer.alloc(11)), () => undefined), /exceeds the maximum/);
  });

  test('holds only the bytes received, not the announced length', () => {
    const decoder = new FrameDecoder(16 * 1024 * 1024);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(16 * 1024 * 1024, 0);
    decoder.push(Buffer.concat([header, Buffer.alloc(10)]), () => assert.fail('incomplete'));
    assert.equal(decoder.pendingBytes, 10);
  });

  test('a header alone is mid-frame (the frame timeout must run), a completed frame is not', () => {
    const decoder = new FrameDecoder(1024);
    assert.equal(decoder.midFrame, false);
    decoder.push(Buffer.from([100, 0, 0, 0]), () => assert.fail('incomplete'));
    assert.equal(decoder.pendingBytes, 0);
    assert.equal(decoder.midFrame, true);
    decoder.push(Buffer.alloc(100), () => undefined);
    assert.equal(decoder.midFrame, false);
    decoder.push(Buffer.from([1]), () => undefined);
    assert.equal(decoder.midFrame, true);
  });

  test('a zero-length frame is delivered as an empty body', () => {
    assert.deepEqual(
      decodeAll(new FrameDecoder(10), [frame(Buffer.alloc(0))]).map((f) => f.length),
      [0],
    );
  });
});
