import { test, describe } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { readTail, TAIL_BLOCK_BYTES } from '../../src/logs/tail.js';

function tmpDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-logs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Lines that stress the backwards scan: empty ones, multi-byte characters, lone '\r'.
const lineArb = fc.oneof(fc.constant(''), fc.string({ maxLength: 12 }), fc.constantFrom('€', 'a\rb', '😀😀'));
const linesArb = fc.array(lineArb.map((s) => s.replace(/\n/g, '')), { maxLength: 30 });

void describe('readTail', () => {
  void test('returns the last n complete lines in order, for any block size and any split into files', async (t) => {
    const dir = tmpDir(t);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(linesArb, { minLength: 1, maxLength: 3 }),
        fc.string({ maxLength: 5 }).map((s) => s.replace(/\n/g, '')),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 9 }),
        async (files, partial, n, blockSize) => {
          // files[0] is the oldest; the live (last) one may end with a line still being written.
          const paths = files.map((_, i) => path.join(dir, `r${run}-${i}`));
          run++;
          files.forEach((lines, i) => {
            const live = i === files.length - 1;
            fs.writeFileSync(paths[i] as string, lines.map((l) => `${l}\n`).join('') + (live ? partial : ''));
          });
          const all = files.flat();
          const expected = n === 0 ? [] : all.slice(-n);
          assert.deepEqual(await readTail([...paths].reverse(), n, { blockSize }), expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  void test('tail(5) of a 10 MB file reads one block from its end', async (t) => {
    const file = path.join(tmpDir(t), 'big.log');
    const lines = Array.from({ length: 200_000 }, (_, i) => `line ${i} ${'.'.repeat(40)}`);
    fs.writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
    assert.ok(fs.statSync(file).size > 9_000_000);
    const stats = { bytesRead: 0 };
    assert.deepEqual(await readTail([file], 5, { stats }), lines.slice(-5));
    assert.equal(stats.bytesRead, TAIL_BLOCK_BYTES);
  });

  void test('missing files and symlinks are skipped', async (t) => {
    const dir = tmpDir(t);
    const real = path.join(dir, 'secret');
    fs.writeFileSync(real, 'do not show\n');
    fs.symlinkSync(real, path.join(dir, 'x.log.1'));
    fs.writeFileSync(path.join(dir, 'x.log'), 'live\n');
    const files = ['x.log', 'x.log.1', 'x.log.2'].map((f) => path.join(dir, f));
    assert.deepEqual(await readTail(files, 10), ['live']);
    assert.deepEqual(await readTail([path.join(dir, 'nope', 'x.log')], 10), []);
  });
});

describe('readTail counts', () => {
  test('lines that do not count are returned where they fall without displacing counted ones', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-tail-counts-'));
    try {
      const file = path.join(dir, 'a.log');
      fs.writeFileSync(file, 'T sys started\nT out 1\nT out 2\nT sys note\nT out 3\nT sys exited\n');
      const counts = (l: string): boolean => !l.startsWith('T sys');
      assert.deepEqual(await readTail([file], 3, { counts }), ['T out 1', 'T out 2', 'T sys note', 'T out 3', 'T sys exited']);
      assert.deepEqual(await readTail([file], 1, { counts }), ['T out 3', 'T sys exited']);
      // Without `counts` every line counts.
      assert.deepEqual(await readTail([file], 2), ['T out 3', 'T sys exited']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
