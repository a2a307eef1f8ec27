import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineSplitter, MAX_LINE_BYTES, cutPoint } from '../../src/logs/line-splitter.js';

/** Split `bytes` at the given positions (any order, duplicates and out-of-range ones allowed). */
function chunk(bytes: Uint8Array, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    out.push(Buffer.from(bytes.subarray(start, p)));
    start = p;
  }
  out.push(Buffer.from(bytes.subarray(start)));
  return out;
}

function run(chunks: Buffer[], maxLine?: number): Buffer[] {
  const s = new LineSplitter(maxLine);
  const lines: Buffer[] = [];
  for (const c of chunks) lines.push(...s.push(c).map((l) => Buffer.from(l)));
  lines.push(...s.flush());
  return lines;
}

/** The lines as a naive reader of the whole input sees them: no length limit. */
function reference(bytes: Uint8Array): Buffer[] {
  const buf = Buffer.from(bytes);
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = buf.indexOf(0x0a); nl !== -1; nl = buf.indexOf(0x0a, start)) {
    let line = buf.subarray(start, nl);
    if (line.at(-1) === 0x0d) line = line.subarray(0, -1);
    lines.push(line);
    start = nl + 1;
  }
  if (start < buf.length) lines.push(buf.subarray(start));
  return lines;
}

// Bytes rich in what matters: newlines, '\r', UTF-8 lead and continuation bytes, invalid bytes.
const byteArb = fc.oneof(fc.constantFrom(0x0a, 0x0d, 0xe2, 0x82, 0xac, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0xff, 0x41), fc.integer({ min: 0, max: 255 }));
const bytesArb = fc.array(byteArb, { maxLength: 400 }).map((a) => Uint8Array.from(a));
const cutsArb = fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 40 });

void describe('LineSplitter', () => {
  void test('any split of the bytes into chunks yields the same lines (no length limit reached)', () => {
    fc.assert(
      fc.property(bytesArb, cutsArb, (bytes, cuts) => {
        assert.deepEqual(run(chunk(bytes, cuts)), reference(bytes));
      }),
      { numRuns: 500 },
    );
  });

  void test('with a small line limit: chunking does not matter, pieces are bounded, no byte is lost', () => {
    fc.assert(
      fc.property(bytesArb, cutsArb, fc.integer({ min: 4, max: 20 }), (bytes, cuts, max) => {
        const whole = run([Buffer.from(bytes)], max);
        assert.deepEqual(run(chunk(bytes, cuts), max), whole);
        for (const piece of whole) assert.ok(piece.length <= max);
        assert.deepEqual(Buffer.concat(whole), Buffer.concat(reference(bytes)));
      }),
      { numRuns: 500 },
    );
  });

  void test('long lines are never cut inside a UTF-8 character', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 60 }), { maxLength: 6 }), cutsArb, fc.integer({ min: 4, max: 12 }), (texts, cuts, max) => {
        const clean = texts.map((t) => t.replace(/[\r\n]/g, ''));
        const bytes = Buffer.from(clean.map((t) => `${t}\n`).join(''));
        const pieces = run(chunk(bytes, cuts), max).map((p) => p.toString('utf8'));
        // A character cut in two would decode as U+FFFD in both pieces, and the join would differ.
        assert.equal(pieces.join(''), Buffer.from(clean.join('')).toString('utf8'));
      }),
      { numRuns: 300 },
    );
  });

  void test('a 200 KiB line becomes 64 KiB pieces, and the pending bytes stay bounded', () => {
    const s = new LineSplitter();
    const pieces: Buffer[] = [];
    const block = Buffer.alloc(1000, 'x');
    for (let i = 0; i < 200; i++) {
      pieces.push(...s.push(block));
      assert.ok(s.pending <= MAX_LINE_BYTES + 1 + block.length);
    }
    pieces.push(...s.push(Buffer.from('\r\n')));
    assert.deepEqual(pieces.map((p) => p.length), [MAX_LINE_BYTES, MAX_LINE_BYTES, MAX_LINE_BYTES, 200_000 - 3 * MAX_LINE_BYTES]);
    assert.equal(s.pending, 0);
  });

  void test('CRLF is stripped once; a lone CR stays; flush keeps a partial as is', () => {
    const s = new LineSplitter();
    assert.deepEqual(s.push(Buffer.from('a\r\nb\r\r\nc\rd\n\ne\r')).map(String), ['a', 'b\r', 'c\rd', '']);
    assert.deepEqual(s.flush().map(String), ['e\r']);
    assert.deepEqual(s.flush(), []);
  });

  void test('cutPoint backs off to the start of a multi-byte character', () => {
    const euro = Buffer.from('ab€cd'); // € is 3 bytes at index 2..4
    assert.equal(cutPoint(euro, 2), 2);
    assert.equal(cutPoint(euro, 3), 2);
    assert.equal(cutPoint(euro, 4), 2);
    assert.equal(cutPoint(euro, 5), 5);
    // A run of stray continuation bytes: no character to keep whole, cut at the limit.
    assert.equal(cutPoint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80]), 5), 5);
  });

  void test('refuses a limit too small to cut safely', () => {
    assert.throws(() => new LineSplitter(3), RangeError);
  });
});
