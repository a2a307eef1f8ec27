import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatLogLine, parseLogLine } from '../../src/protocol/log-line.js';

/**
 * One code point of any plane, surrogates excepted, uniformly: what fast-check's `unit: 'binary'` gives,
 * without the reverse table of all 1.1 million code points that unit builds on first use (1.5 s of
 * CPU in every run).
 */
const SURROGATES = 0xe000 - 0xd800;
const anyCodePoint = fc.integer({ min: 0, max: 0x10ffff - SURROGATES }).map(
  (n) => String.fromCodePoint(n < 0xd800 ? n : n + SURROGATES),
  (s) => {
    const c = typeof s === 'string' && s.length <= 2 ? s.codePointAt(0) : undefined;
    if (c === undefined || String.fromCodePoint(c) !== s || (c >= 0xd800 && c < 0xe000))
      throw new Error('not one code point');
    return c < 0xd800 ? c : c - SURROGATES;
  },
);

void describe('log line format', () => {
  void test('the documented example parses', () => {
    assert.deepEqual(parseLogLine('2026-11-26T03:50:41.537Z out hello'), {
      time: '2026-11-26T03:50:41.537Z',
      stream: 'out',
      text: 'hello',
    });
  });

  void test('format then parse is the identity for any text without a newline', () => {
    const dateArb = fc.date({
      min: new Date('1970-01-01T00:00:00Z'),
      max: new Date('9999-12-31T23:59:59Z'),
      noInvalidDate: true,
    });
    fc.assert(
      fc.property(
        dateArb,
        fc.constantFrom('out', 'err', 'sys' as const),
        fc.string({ unit: anyCodePoint, maxLength: 40 }),
        (date, stream, raw) => {
          const text = raw.replace(/\n/g, '');
          assert.deepEqual(parseLogLine(formatLogLine(date, stream, text)), { time: date.toISOString(), stream, text });
        },
      ),
      { numRuns: 500 },
    );
  });

  void test('text that imitates a line header stays text', () => {
    const line = formatLogLine('2026-01-01T00:00:00.000Z', 'err', '2026-01-01T00:00:00.000Z sys forged');
    assert.deepEqual(parseLogLine(line), {
      time: '2026-01-01T00:00:00.000Z',
      stream: 'err',
      text: '2026-01-01T00:00:00.000Z sys forged',
    });
  });

  void test('an empty text parses, with or without its trailing space', () => {
    assert.equal(parseLogLine('2026-01-01T00:00:00.000Z out ')?.text, '');
    assert.equal(parseLogLine('2026-01-01T00:00:00.000Z out')?.text, '');
  });

  void test('lines not in the format are null', () => {
    for (const bad of [
      '',
      'hello',
      '2026-01-01T00:00:00Z out x',
      '2026-01-01T00:00:00.000Z in x',
      '2026-01-01 00:00:00.000Z out x',
      '2026-01-01T00:00:00.000Zout x',
    ]) {
      assert.equal(parseLogLine(bad), null, bad);
    }
  });
});
