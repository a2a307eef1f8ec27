import { test, describe } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { AdiError } from '../../src/core/errors.js';
import { splitBatch, type LogLine } from '../../src/protocol/log-batch.js';
import { LogReader, type LogBatch } from '../../src/logs/reader.js';
import { ServiceLog, parseLogLine } from '../../src/logs/service-log.js';
import { HEADER_BYTES, MAX_LINE_BYTES, RECORD_BYTES } from '../../src/logs/store.js';

const MiB = 1024 * 1024;
const STREAMS = ['out', 'err', 'sys'];

function tmpDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-logs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Everything a reader gives until it has nothing new (copied: a batch's buffer is reused by the next). */
function drain(reader: LogReader, limit = 64 * 1024): LogLine[] {
  const out: LogLine[] = [];
  for (let b = reader.next(limit); b !== null; b = reader.next(limit))
    for (const l of splitBatch(b)) out.push({ ...l, text: Buffer.from(l.text) });
  return out;
}

function texts(lines: LogLine[], stream?: number): string[] {
  return lines
    .filter((l) => stream === undefined || l.stream === stream)
    .map((l) => `${STREAMS[l.stream]} ${l.text.toString('latin1')}`);
}

async function tailLines(log: ServiceLog, n: number): Promise<LogLine[]> {
  const reader = await LogReader.tail(log, n, { bounded: true });
  try {
    return drain(reader);
  } finally {
    reader.close();
  }
}

/**
 * What the lines of a sequence of writes must be: per stream, split at '\n' and cut at MAX_LINE_BYTES
 * (ASCII data, so no UTF-8 back-off), in the order the chunks completing them were written.
 */
function model(writes: Array<{ stream: 'out' | 'err'; bytes: Buffer }>, flush = false): string[] {
  const pending: Record<string, string> = { out: '', err: '' };
  const out: string[] = [];
  for (const { stream, bytes } of writes) {
    let text = pending[stream] + bytes.toString('latin1');
    for (;;) {
      const nl = text.indexOf('\n');
      const end = nl === -1 ? text.length : nl;
      if (end > MAX_LINE_BYTES) {
        out.push(`${stream} ${text.slice(0, MAX_LINE_BYTES)}`);
        text = text.slice(MAX_LINE_BYTES);
        continue;
      }
      if (nl === -1) break;
      out.push(`${stream} ${text.slice(0, nl)}`);
      text = text.slice(nl + 1);
    }
    pending[stream] = text;
  }
  if (flush) for (const s of ['out', 'err']) if (pending[s] !== '') out.push(`${s} ${pending[s]}`);
  return out;
}

void describe('ServiceLog storage', () => {
  void test('any bytes are stored as they came and read back as lines: NUL, escapes, invalid UTF-8, CR', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    const nasty = Buffer.concat([
      Buffer.from('a\0b\n\x1b]0;title\x07\n'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x0a]),
      Buffer.from('crlf\r\n'),
    ]);
    log.write('out', nasty);
    log.write('err', Buffer.from('oops\n'));
    log.note('a note');
    // The data file holds the service's bytes exactly (and the note).
    assert.deepEqual(fs.readFileSync(log.file).subarray(0, nasty.length), nasty);
    const lines = await tailLines(log, 10);
    assert.deepEqual(
      lines.map((l) => l.text),
      [
        Buffer.from('a\0b'),
        Buffer.from('\x1b]0;title\x07'),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from('crlf\r'),
        Buffer.from('oops'),
        Buffer.from('a note'),
      ],
    );
    assert.deepEqual(
      lines.map((l) => l.stream),
      [0, 0, 0, 0, 1, 2],
    );
    for (const l of lines) assert.ok(Math.abs(l.time - Date.now()) < 60_000);
    // The string form keeps NUL and decodes invalid bytes as U+FFFD.
    const formatted = await log.tail(10);
    assert.equal(parseLogLine(formatted[0] as string)?.text, 'a\0b');
    assert.equal(parseLogLine(formatted[2] as string)?.text, '\ufffd\ufffd\ufffd');
  });

  void test('any split of the output into chunks, across out and err, gives the same lines', async (t) => {
    const dir = tmpDir(t);
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            stream: fc.constantFrom<'out' | 'err'>('out', 'err'),
            text: fc.string({ unit: fc.constantFrom('a', 'b', '\n', '\0', '\x1b'), maxLength: 40 }),
          }),
          { maxLength: 30 },
        ),
        async (chunks) => {
          const log = new ServiceLog(dir, `p${round++}`);
          const writes = chunks.map((c) => ({ stream: c.stream, bytes: Buffer.from(c.text, 'latin1') }));
          for (const w of writes) log.write(w.stream, w.bytes);
          assert.deepEqual(texts(await tailLines(log, 1000)), model(writes));
          // close() ends unfinished lines: now they are lines too.
          log.close();
          assert.deepEqual(texts(await tailLines(log, 1000)), model(writes, true));
        },
      ),
      { numRuns: 60 },
    );
  });

  void test('a 20 MB line is stored whole and read as 64 KiB lines; memory per reader stays bounded', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc', { maxBytes: 64 * MiB });
    const big = Buffer.alloc(20 * MiB, 0x61);
    for (let at = 0; at < big.length; at += 65536) log.write('out', big.subarray(at, at + 65536));
    log.write('out', Buffer.from('\nafter\n'));
    assert.equal(fs.statSync(log.file).size, big.length + 7);
    const reader = await LogReader.tail(log, 1_000_000, { bounded: true });
    let total = 0;
    let count = 0;
    for (let b = reader.next(256 * 1024); b !== null; b = reader.next(256 * 1024)) {
      assert.ok(b.data.length <= 256 * 1024 + MAX_LINE_BYTES + 1, `batch of ${b.data.length} bytes`);
      for (const l of splitBatch(b)) {
        assert.ok(l.text.length <= MAX_LINE_BYTES);
        total += l.text.length;
        count++;
      }
    }
    reader.close();
    assert.equal(total, big.length + 'after'.length);
    assert.equal(count, Math.ceil(big.length / MAX_LINE_BYTES) + 1);
  });

  void test("tail counts the service's lines, not the notes between them", async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    log.note('started');
    for (let i = 1; i <= 5; i++) {
      log.write(i % 2 === 0 ? 'err' : 'out', Buffer.from(`${i}\n`));
      if (i === 3) log.note('between');
    }
    assert.deepEqual(texts(await tailLines(log, 2)), ['err 4', 'out 5']);
    assert.deepEqual(texts(await tailLines(log, 3)), ['out 3', 'sys between', 'err 4', 'out 5']);
    assert.deepEqual(texts(await tailLines(log, 10)), [
      'sys started',
      'out 1',
      'err 2',
      'out 3',
      'sys between',
      'err 4',
      'out 5',
    ]);
    assert.deepEqual(await tailLines(log, 0), []);
    assert.deepEqual(await tailLines(new ServiceLog(tmpDir(t), 'empty'), 5), []);
  });

  void test('a tail that starts inside a line of the other stream gives that line whole', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    log.write('err', Buffer.from('begun '));
    for (let i = 0; i < 5; i++) log.write('out', Buffer.from(`o${i}\n`));
    log.write('err', Buffer.from('and ended\n'));
    assert.deepEqual(texts(await tailLines(log, 2)), ['out o4', 'err begun and ended']);
    assert.deepEqual(texts(await tailLines(log, 1)), ['err begun and ended']);
  });

  void test('files are 0600 in a 0700 directory made on the first write; bad names and options are refused', (t) => {
    const dir = path.join(tmpDir(t), 'logs');
    const log = new ServiceLog(dir, 'svc');
    assert.equal(fs.existsSync(dir), false);
    log.note('x');
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(log.file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(`${log.base}.idx`).mode & 0o777, 0o600);
    for (const name of ['', '.', '..', 'a/b', 'a\0b'])
      assert.throws(
        () => new ServiceLog(dir, name),
        (e: AdiError) => e.code === 'BAD_SERVICE_NAME',
      );
    assert.throws(
      () => new ServiceLog(dir, 'x', { maxBytes: 0 }),
      (e: AdiError) => e.code === 'BAD_CONFIG',
    );
    assert.throws(
      () => new ServiceLog(dir, 'x', { maxFiles: -1 }),
      (e: AdiError) => e.code === 'BAD_CONFIG',
    );
  });

  void test('close() releases the files; a later write reopens them and the log goes on', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    log.write('out', Buffer.from('one\ntw'));
    assert.equal(log.isOpen, true);
    log.close();
    log.close();
    assert.equal(log.isOpen, false);
    // Readable while closed, without reopening the writer's files.
    assert.deepEqual(texts(await tailLines(log, 5)), ['out one', 'out tw']);
    assert.equal(log.isOpen, false);
    log.write('out', Buffer.from('three\n'));
    assert.deepEqual(texts(await tailLines(log, 5)), ['out one', 'out tw', 'out three']);
  });
});

void describe('ServiceLog crash repair and old files', () => {
  void test('a writer that died mid-line and mid-record leaves a log the next one repairs', async (t) => {
    const dir = tmpDir(t);
    const first = new ServiceLog(dir, 'svc');
    first.write('out', Buffer.from('whole\nhalf a li'));
    // Torn: bytes written without their record, and a partial record.
    fs.appendFileSync(first.file, 'ne never indexed');
    fs.appendFileSync(`${first.base}.idx`, Buffer.alloc(RECORD_BYTES / 2, 7));
    // No close(): the daemon was killed. A new daemon opens the same log.
    const second = new ServiceLog(dir, 'svc');
    second.write('out', Buffer.from('next run\n'));
    assert.deepEqual(texts(await tailLines(second, 10)), ['out whole', 'out half a li', 'out next run']);
    assert.equal((fs.statSync(`${second.base}.idx`).size - HEADER_BYTES) % RECORD_BYTES, 0);
  });

  void test('a log of the earlier text format is kept aside as NAME.log.old and a new log begins', async (t) => {
    const dir = tmpDir(t);
    fs.writeFileSync(path.join(dir, 'svc.log'), '2024-05-01T10:00:00.000Z out old line\n');
    const log = new ServiceLog(dir, 'svc');
    log.write('out', Buffer.from('new\n'));
    assert.equal(fs.readFileSync(path.join(dir, 'svc.log.old'), 'utf8'), '2024-05-01T10:00:00.000Z out old line\n');
    assert.deepEqual(texts(await tailLines(log, 10)), ['out new']);
  });
});

void describe('ServiceLog rotation', () => {
  void test('12 MB through maxBytes 1 MiB, maxFiles 2: three segments within the limit, the tail is in order', async (t) => {
    const dir = tmpDir(t);
    const log = new ServiceLog(dir, 'svc', { maxBytes: MiB, maxFiles: 2 });
    let n = 0;
    while (n < 400_000) {
      let chunk = '';
      for (let k = 0; k < 1000; k++) chunk += `line ${++n} ${'x'.repeat(20)}\n`;
      log.write('out', Buffer.from(chunk));
    }
    const files = fs.readdirSync(dir).sort();
    assert.deepEqual(files, ['svc.idx', 'svc.idx.1', 'svc.idx.2', 'svc.log', 'svc.log.1', 'svc.log.2']);
    for (const k of ['', '.1', '.2']) {
      const size = fs.statSync(path.join(dir, `svc.log${k}`)).size + fs.statSync(path.join(dir, `svc.idx${k}`)).size;
      assert.ok(size <= MiB + 64 * 1024, `segment ${k} is ${size} bytes`);
    }
    const lines = await tailLines(log, 1_000_000);
    const numbers = lines.map((l) => Number(/^line (\d+) /.exec(l.text.toString())?.[1]));
    assert.ok(numbers.length > 50_000);
    assert.equal(numbers[numbers.length - 1], n);
    numbers.forEach((k, i) => i > 0 && assert.equal(k, (numbers[i - 1] as number) + 1));
  });

  void test('a line unfinished at a rotation ends in its segment; maxFiles 0 keeps only the live one', async (t) => {
    const dir = tmpDir(t);
    const log = new ServiceLog(dir, 'svc', { maxBytes: 4096, maxFiles: 1 });
    log.write('out', Buffer.from('start '));
    log.write('out', Buffer.alloc(3000, 0x62));
    log.write('out', Buffer.alloc(2000, 0x63));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['svc.idx', 'svc.idx.1', 'svc.log', 'svc.log.1']);
    assert.deepEqual(texts(await tailLines(log, 5)), [`out start ${'b'.repeat(3000)}`]);
    log.write('out', Buffer.from('\n'));
    assert.deepEqual(texts(await tailLines(log, 5)), [`out start ${'b'.repeat(3000)}`, `out ${'c'.repeat(2000)}`]);
    const only = new ServiceLog(dir, 'zero', { maxBytes: 4096, maxFiles: 0 });
    for (let k = 0; k < 10; k++) only.write('out', Buffer.alloc(3000, 0x64));
    assert.deepEqual(
      fs
        .readdirSync(dir)
        .filter((f) => f.startsWith('zero'))
        .sort(),
      ['zero.idx', 'zero.log'],
    );
  });
});

void describe('LogReader: seams and cursors', () => {
  void test('tail then follow gives every line exactly once, lines begun before the seam included', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc', { maxBytes: 8192, maxFiles: 50 });
    for (let i = 0; i < 100; i++) log.write('out', Buffer.from(`${i}\n`));
    log.write('out', Buffer.from('10'));
    const reader = await LogReader.tail(log, 10);
    log.write('out', Buffer.from('0\n'));
    for (let i = 101; i < 2000; i++) log.write(i % 7 === 0 ? 'err' : 'out', Buffer.from(`${i}\n`));
    const got = drain(reader).map((l) => Number(l.text.toString()));
    reader.close();
    assert.deepEqual(
      got,
      Array.from({ length: 1910 }, (_, i) => 90 + i),
    );
  });

  void test('a reader resuming from its cursor misses nothing and repeats nothing, across rotations', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc', { maxBytes: 4096, maxFiles: 100 });
    const seen: number[] = [];
    let cursor: string | null = null;
    let i = 0;
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 97; k++, i++)
        log.write(i % 3 === 0 ? 'err' : 'out', Buffer.from(i % 5 === 0 ? `${i}` : `${i}\n`));
      const reader: LogReader = cursor === null ? await LogReader.tail(log, 1_000_000) : LogReader.at(log, cursor);
      // A small limit: the reader stops in the middle and a new one takes over from its cursor.
      const b: LogBatch | null = reader.next(200);
      if (b !== null) {
        for (const l of splitBatch(b)) seen.push(Number(l.text.toString()));
        cursor = b.cursor;
      } else cursor = reader.cursor;
      reader.close();
    }
    const reader = LogReader.at(log, cursor);
    for (const l of drain(reader)) seen.push(Number(l.text.toString()));
    reader.close();
    // Lines i % 5 === 0 run into the next line of the same stream ("5" + "8\n" -> "58").
    const expected = texts(await tailLines(log, 1_000_000)).map((l) => Number(l.slice(4)));
    assert.deepEqual(seen, expected);
    assert.ok(seen.length > 1500, `${seen.length} lines`);
  });

  void test('a cursor into segments rotated away resumes at the oldest one, with a note that lines were lost', async (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc', { maxBytes: 4096, maxFiles: 1 });
    log.write('out', Buffer.from('first\n'));
    const cursor = LogReader.at(log, null).cursor;
    for (let i = 0; i < 2000; i++) log.write('out', Buffer.from(`${i}\n`));
    const lines = drain(LogReader.at(log, cursor));
    assert.equal(lines[0]?.stream, 2);
    assert.match(lines[0]?.text.toString() ?? '', /lines were lost/);
    assert.equal(lines[lines.length - 1]?.text.toString(), '1999');
    assert.throws(
      () => LogReader.at(log, 'nonsense'),
      (e: AdiError) => e.code === 'BAD_REQUEST',
    );
  });

  void test('follow() calls back with each new formatted line until stopped', (t) => {
    const log = new ServiceLog(tmpDir(t), 'svc');
    log.write('out', Buffer.from('before\n'));
    const seen: string[] = [];
    const stop = log.follow((l) => seen.push(l));
    log.write('out', Buffer.from('one\n'));
    log.write('err', Buffer.from('two\n'));
    stop();
    log.write('out', Buffer.from('three\n'));
    assert.deepEqual(
      seen.map((l) => parseLogLine(l)?.text),
      ['one', 'two'],
    );
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
    assert.doesNotThrow(() => {
      log.write('out', Buffer.from('evil\n'));
      log.note('more');
    });
    assert.equal(fs.readFileSync(target, 'utf8'), 'keep me\n');
    assert.equal((log.lastError as NodeJS.ErrnoException | null)?.code, 'ELOOP');
    assert.equal(errors.length, 1);
  });

  void test('a FIFO at the log path neither blocks nor gets written', (t) => {
    const dir = tmpDir(t);
    execFileSync('mkfifo', [path.join(dir, 'svc.log')]);
    const log = new ServiceLog(dir, 'svc');
    log.note('x');
    assert.ok(log.lastError);
  });

  void test('an impossible directory sets lastError without throwing, and writing resumes once it is possible', async (t) => {
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
      log.note('lost 2');
    });
    assert.ok(log.lastError);
    assert.equal(errors.length, 1, 'reported once, not per write');
    assert.deepEqual(await log.tail(5), []);
    fs.rmSync(blocker);
    log.write('err', Buffer.from('back\n'));
    assert.equal(log.lastError, null);
    assert.deepEqual(texts(await tailLines(log, 5)), ['err back']);
  });
});
