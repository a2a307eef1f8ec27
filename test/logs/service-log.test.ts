import { test, describe } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { AdiError } from '../../src/errors.js';
import { MAX_LINE_BYTES } from '../../src/logs/line-splitter.js';
import { DEFAULT_LOG_OPTIONS, ServiceLog, parseLogLine } from '../../src/logs/service-log.js';
import { readTail, TAIL_BLOCK_BYTES } from '../../src/logs/tail.js';

const MiB = 1024 * 1024;

function tmpDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-logs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fileLines(file: string): string[] {
  const content = fs.readFileSync(file, 'utf8');
  assert.ok(content === '' || content.endsWith('\n'), 'every line ends with a newline');
  return content === '' ? [] : content.slice(0, -1).split('\n');
}

/** "<stream> <text>" of each line, checking every line parses. */
function streamTexts(lines: string[]): string[] {
  return lines.map((line) => {
    const parsed = parseLogLine(line);
    assert.ok(parsed, `unparsable line: ${JSON.stringify(line)}`);
    return `${parsed.stream} ${parsed.text}`;
  });
}

void describe('ServiceLog writing', () => {
  void test('lines are formatted with a UTC timestamp and the stream', (t) => {
    const dir = tmpDir(t);
    const log = new ServiceLog(dir, 'web');
    assert.equal(log.file, path.join(dir, 'web.log'));
    const before = Date.now();
    log.write('out', Buffer.from('hello\nworld\r\n'));
    log.note('started pid 123');
    log.close();
    const lines = fileLines(log.file);
    assert.deepEqual(streamTexts(lines), ['out hello', 'out world', 'sys started pid 123']);
    assert.match(lines[0] as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z out hello$/);
    const time = Date.parse(parseLogLine(lines[0] as string)?.time ?? '');
    assert.ok(time >= before - 1 && time <= Date.now());
  });

  void test('out and err keep separate partial lines', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    log.write('out', Buffer.from('hel'));
    log.write('err', Buffer.from('wor'));
    log.write('out', Buffer.from('lo\nnext'));
    log.write('err', Buffer.from('ld\n'));
    assert.deepEqual(streamTexts(fileLines(log.file)), ['out hello', 'err world']);
    log.flushPartial('out');
    log.flushPartial('out'); // nothing left: no empty line
    assert.deepEqual(streamTexts(fileLines(log.file)), ['out hello', 'err world', 'out next']);
  });

  void test('close flushes both partials and is idempotent; a later write reopens the file', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    log.write('out', Buffer.from('a'));
    log.write('err', Buffer.from('b'));
    log.close();
    log.close();
    assert.deepEqual(streamTexts(fileLines(log.file)), ['out a', 'err b']);
    log.write('out', Buffer.from('again\n'));
    assert.deepEqual(streamTexts(fileLines(log.file)), ['out a', 'err b', 'out again']);
    log.close();
  });

  void test('any split of the output into chunks gives the same lines in the file', (t) => {
    const dir = tmpDir(t);
    let run = 0;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0x0a, 0x0d, 0x41, 0x20, 0xe2, 0x82, 0xac, 0xff), { maxLength: 200 }), fc.array(fc.integer({ min: 0, max: 200 })), (arr, cuts) => {
        const bytes = Buffer.from(arr);
        const log = new ServiceLog(dir, `p${run++}`);
        const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
        let start = 0;
        for (const p of [...points, bytes.length]) {
          log.write('out', bytes.subarray(start, p));
          start = p;
        }
        log.close();
        const expected = bytes.toString('latin1').split('\n');
        const last = expected.pop() as string; // after the last '\n': the partial flushed by close()
        const texts = expected.map((l) => l.replace(/\r$/, ''));
        if (last !== '') texts.push(last);
        const decoded = texts.map((l) => `out ${Buffer.from(l, 'latin1').toString('utf8')}`);
        assert.deepEqual(fs.existsSync(log.file) ? streamTexts(fileLines(log.file)) : [], decoded);
      }),
      { numRuns: 200 },
    );
  });

  void test('a line longer than 64 KiB is split into 64 KiB pieces', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    const long = 'x'.repeat(3 * MAX_LINE_BYTES + 10);
    log.write('err', Buffer.from(`${long}\nshort\n`));
    const texts = fileLines(log.file).map((l) => parseLogLine(l)?.text ?? '');
    assert.deepEqual(texts.map((s) => s.length), [MAX_LINE_BYTES, MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 5]);
    assert.equal(texts.slice(0, 4).join(''), long);
  });

  void test('bytes that are not UTF-8 are written as Node decodes them', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    log.write('out', Buffer.from([0x61, 0xff, 0x62, 0x0a]));
    assert.deepEqual(streamTexts(fileLines(log.file)), ['out a\uFFFDb']);
  });

  void test('a multi-line note becomes one sys line per line', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    log.note('exited with code 7\nstderr said: boom');
    log.note('');
    assert.deepEqual(streamTexts(fileLines(log.file)), ['sys exited with code 7', 'sys stderr said: boom', 'sys ']);
  });

  void test('file is 0600 in a 0700 directory created on the first write, not by the constructor', (t) => {
    const dir = path.join(tmpDir(t), 'a', 'b');
    const log = new ServiceLog(dir, 'svc');
    assert.equal(fs.existsSync(dir), false);
    log.note('hi');
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(log.file).mode & 0o777, 0o600);
  });

  void test('a second ServiceLog on the same file appends', (t) => {
    const dir = tmpDir(t);
    new ServiceLog(dir, 'svc').note('one');
    new ServiceLog(dir, 'svc').note('two');
    assert.deepEqual(streamTexts(fileLines(path.join(dir, 'svc.log'))), ['sys one', 'sys two']);
  });

  void test('bad names and options are refused', () => {
    for (const name of ['', '.', '..', 'a/b', 'a\\b', 'a\0b']) {
      assert.throws(() => new ServiceLog('/tmp', name), (e: unknown) => e instanceof AdiError && e.code === 'BAD_SERVICE_NAME', name);
    }
    for (const opts of [{ maxBytes: 0 }, { maxBytes: 1.5 }, { maxBytes: Number.NaN }, { maxFiles: -1 }, { maxFiles: 1e6 }]) {
      assert.throws(() => new ServiceLog('/tmp', 'svc', opts), (e: unknown) => e instanceof AdiError && e.code === 'BAD_CONFIG');
    }
    assert.deepEqual(DEFAULT_LOG_OPTIONS, { maxBytes: 10 * MiB, maxFiles: 4 });
  });
});

void describe('ServiceLog rotation', () => {
  void test('12 MB through maxBytes 1 MiB, maxFiles 2: three files, each within the limit, lines in order', async (t) => {
    const dir = tmpDir(t);
    const log = new ServiceLog(dir, 'svc', { maxBytes: MiB, maxFiles: 2 });
    let seq = 0;
    let written = 0;
    while (written < 12_000_000) {
      let chunk = '';
      while (chunk.length < 60_000) chunk += `line ${seq++} ${'.'.repeat(80)}\n`;
      log.write('out', Buffer.from(chunk));
      written += chunk.length;
    }
    log.close();

    assert.deepEqual(fs.readdirSync(dir).sort(), ['svc.log', 'svc.log.1', 'svc.log.2']);
    let total = 0;
    for (const f of fs.readdirSync(dir)) {
      const size = fs.statSync(path.join(dir, f)).size;
      assert.ok(size <= MiB, `${f} is ${size} bytes`);
      total += size;
    }
    assert.ok(total <= 3 * MiB);

    // Everything kept is the newest, contiguous run of lines, and tail reads it across the files.
    const kept = [path.join(dir, 'svc.log.2'), path.join(dir, 'svc.log.1'), log.file].flatMap(fileLines);
    const liveCount = fileLines(log.file).length;
    const tail = await log.tail(liveCount + 1000);
    assert.deepEqual(tail, kept.slice(-(liveCount + 1000)));
    const seqs = kept.map((l) => Number(/line (\d+)/.exec(l)?.[1]));
    assert.equal(seqs.at(-1), seq - 1);
    seqs.forEach((s, i) => i > 0 && assert.equal(s, (seqs[i - 1] as number) + 1));
    assert.deepEqual(await log.tail(1e9), kept, 'asking for more than exists returns all that is kept');
  });

  void test('a line is never split across files; one line larger than maxBytes gets a file of its own', (t) => {
    const dir = tmpDir(t);
    const log = new ServiceLog(dir, 'svc', { maxBytes: 100, maxFiles: 3 });
    log.write('out', Buffer.from(`${'a'.repeat(40)}\n${'b'.repeat(40)}\n${'c'.repeat(200)}\nd\n`));
    const texts = (f: string): string[] => fileLines(path.join(dir, f)).map((l) => parseLogLine(l)?.text ?? '');
    assert.deepEqual(texts('svc.log.3'), ['a'.repeat(40)]);
    assert.deepEqual(texts('svc.log.2'), ['b'.repeat(40)]);
    assert.deepEqual(texts('svc.log.1'), ['c'.repeat(200)]);
    assert.deepEqual(texts('svc.log'), ['d']);
  });

  void test('maxFiles 0 keeps only the live file; stale files beyond maxFiles are removed', (t) => {
    const dir = tmpDir(t);
    for (const f of ['svc.log.1', 'svc.log.7', 'svc.log.old', 'other.log.3']) fs.writeFileSync(path.join(dir, f), 'x\n');
    const log = new ServiceLog(dir, 'svc', { maxBytes: 50, maxFiles: 0 });
    for (let i = 0; i < 10; i++) log.note(`note ${i}`);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['other.log.3', 'svc.log', 'svc.log.old']);
    assert.deepEqual(streamTexts(fileLines(log.file)), ['sys note 9']);
  });

  void test('an existing file already over the limit is rotated on the first write', (t) => {
    const dir = tmpDir(t);
    fs.writeFileSync(path.join(dir, 'svc.log'), 'z'.repeat(500) + '\n');
    const log = new ServiceLog(dir, 'svc', { maxBytes: 200, maxFiles: 1 });
    log.note('fresh');
    assert.equal(fs.statSync(path.join(dir, 'svc.log.1')).size, 501);
    assert.deepEqual(streamTexts(fileLines(log.file)), ['sys fresh']);
  });

  void test('followers are unaffected by rotation', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc', { maxBytes: 64, maxFiles: 1 });
    const seen: string[] = [];
    log.follow((l) => seen.push(l));
    for (let i = 0; i < 20; i++) log.write('out', Buffer.from(`n${i}\n`));
    assert.deepEqual(seen.map((l) => parseLogLine(l)?.text), Array.from({ length: 20 }, (_, i) => `n${i}`));
  });
});

void describe('ServiceLog tail', () => {
  void test('tail(200000) of 200,000 lines returns them all, in order', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    for (let i = 0; i < 200_000; i += 1000) {
      let chunk = '';
      for (let j = i; j < i + 1000; j++) chunk += `line ${j}\n`;
      log.write('out', Buffer.from(chunk));
    }
    const lines = await log.tail(200_000);
    assert.equal(lines.length, 200_000);
    lines.forEach((l, i) => {
      if (parseLogLine(l)?.text !== `line ${i}`) assert.fail(`line ${i} is ${l}`);
    });
  });

  void test('tail(5) of a 10 MB log returns the last 5 lines, reading only the end', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc', { maxBytes: 20 * MiB });
    let seq = 0;
    while (seq < 150_000) {
      let chunk = '';
      for (let j = 0; j < 1000; j++) chunk += `line ${seq++} ${'-'.repeat(40)}\n`;
      log.write('out', Buffer.from(chunk));
    }
    assert.ok(fs.statSync(log.file).size > 10_000_000);
    const lines = await log.tail(5);
    assert.deepEqual(lines.map((l) => /line (\d+)/.exec(l)?.[1]), ['149995', '149996', '149997', '149998', '149999']);
    const stats = { bytesRead: 0 };
    await readTail([log.file], 5, { stats });
    assert.equal(stats.bytesRead, TAIL_BLOCK_BYTES);
  });

  void test('tail skips a partial line, and returns nothing for an empty or missing log', async (t) => {
    const log = new ServiceLog(path.join(tmpDir(t), 'logs'), 'svc');
    assert.deepEqual(await log.tail(10), []);
    log.write('out', Buffer.from('done\npartial'));
    assert.deepEqual(streamTexts(await log.tail(10)), ['out done']);
    assert.deepEqual(await log.tail(0), []);
    assert.deepEqual(await log.tail(-3), []);
    assert.deepEqual(await log.tail(Number.NaN), []);
  });
});

void describe('ServiceLog follow', () => {
  void test('listeners get each formatted line as written, until they unsubscribe', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    const a: string[] = [];
    const b: string[] = [];
    const offA = log.follow((l) => a.push(l));
    log.follow((l) => b.push(l));
    log.write('out', Buffer.from('one\ntw'));
    assert.equal(a.length, 1, 'a partial line is not delivered');
    log.write('out', Buffer.from('o\n'));
    offA();
    offA();
    log.note('three');
    assert.deepEqual(a, fileLines(log.file).slice(0, 2));
    assert.deepEqual(b, fileLines(log.file));
    assert.deepEqual(streamTexts(b), ['out one', 'out two', 'sys three']);
  });

  void test('a throwing listener is removed and never breaks the writer or the others', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    let calls = 0;
    const good: string[] = [];
    log.follow(() => {
      calls++;
      throw new Error('listener bug');
    });
    log.follow((l) => good.push(l));
    log.write('out', Buffer.from('a\nb\n'));
    log.write('out', Buffer.from('c\n'));
    assert.equal(calls, 1);
    assert.deepEqual(streamTexts(good), ['out a', 'out b', 'out c']);
    assert.deepEqual(streamTexts(fileLines(log.file)), ['out a', 'out b', 'out c']);
  });

  void test('the same function subscribed twice is two subscriptions', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    const seen: string[] = [];
    const fn = (l: string): void => void seen.push(l);
    const off1 = log.follow(fn);
    log.follow(fn);
    off1();
    log.note('x');
    assert.equal(seen.length, 1);
  });
});

void describe('ServiceLog errors', () => {
  void test('a symlink at the log path is not followed; the error is reported once', (t) => {
    const dir = tmpDir(t);
    const target = path.join(dir, 'precious');
    fs.writeFileSync(target, 'keep me\n');
    fs.symlinkSync(target, path.join(dir, 'svc.log'));
    const errors: Error[] = [];
    const log = new ServiceLog(dir, 'svc', { onError: (e) => errors.push(e) });
    const seen: string[] = [];
    log.follow((l) => seen.push(l));
    assert.doesNotThrow(() => {
      log.write('out', Buffer.from('evil\n'));
      log.note('more');
    });
    assert.equal(fs.readFileSync(target, 'utf8'), 'keep me\n');
    assert.equal((log.lastError as NodeJS.ErrnoException | null)?.code, 'ELOOP');
    assert.equal(errors.length, 1);
    assert.equal(seen.length, 2, 'followers still see the lines');
  });

  void test('a FIFO at the log path neither blocks nor gets written', (t) => {
    const dir = tmpDir(t);
    try {
      execFileSync('mkfifo', [path.join(dir, 'svc.log')]);
    } catch {
      t.skip('mkfifo is not available');
      return;
    }
    const log = new ServiceLog(dir, 'svc');
    log.note('x');
    assert.ok(log.lastError);
  });

  void test('an impossible directory sets lastError without throwing, and writing resumes once it is possible', (t) => {
    // The parent is a regular file, so mkdir fails even for root (chmod would not stop root).
    const base = tmpDir(t);
    const blocker = path.join(base, 'afile');
    fs.writeFileSync(blocker, '');
    const errors: Error[] = [];
    const log = new ServiceLog(path.join(blocker, 'logs'), 'svc', {
      onError: (e) => {
        errors.push(e);
        throw new Error('a broken onError must not escape either');
      },
    });
    assert.doesNotThrow(() => {
      log.write('out', Buffer.from('lost 1\n'));
      log.write('err', Buffer.from('lost 2\npart'));
      log.note('lost 3');
    });
    assert.ok(log.lastError);
    assert.equal(errors.length, 1, 'reported once, not per write');

    fs.rmSync(blocker);
    log.write('err', Buffer.from('ial\n'));
    assert.equal(log.lastError, null);
    assert.deepEqual(streamTexts(fileLines(log.file)), ['err partial']);

    // A new failure after the recovery is reported again.
    fs.rmSync(path.join(base, 'afile'), { recursive: true });
    fs.writeFileSync(blocker, '');
    log.close();
    log.note('lost 4');
    assert.ok(log.lastError);
    assert.equal(errors.length, 2);
  });

  void test('tail of a log whose directory cannot exist is empty, not an error', async (t) => {
    const blocker = path.join(tmpDir(t), 'afile');
    fs.writeFileSync(blocker, '');
    assert.deepEqual(await new ServiceLog(path.join(blocker, 'logs'), 'svc').tail(5), []);
  });
});
