// `adi daemon logs` for people: several services merged by time with a prefix, --all, --since,
// --stderr, follow across services, and colour only on a terminal without NO_COLOR.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import type { LogEntry } from '../../src/client/client.js';
import {
  displayEntry,
  keepEntry,
  lastLines,
  mergeByTime,
  parseSince,
  safeText,
  useColour,
} from '../../src/cli/log-view.js';
import { serviceLog } from '../helpers/daemon.js';
import { ADI, adi, waitFor } from '../helpers/env.js';
import { adiInTty, homeWithDaemon } from './helpers.js';

const ESC = '\x1b';

describe('log view helpers', () => {
  test('--since takes durations and times', () => {
    const now = Date.parse('2024-05-01T12:00:00.000Z');
    assert.equal(parseSince('30s', now), now - 30_000);
    assert.equal(parseSince('10m', now), now - 600_000);
    assert.equal(parseSince('2h', now), now - 7_200_000);
    assert.equal(parseSince('1h30m', now), now - 5_400_000);
    assert.equal(parseSince('1d', now), now - 86_400_000);
    assert.equal(parseSince('2024-05-01T11:00:00Z', now), now - 3_600_000);
    assert.equal(parseSince('2024-05-01', now), Date.parse('2024-05-01'));
    for (const bad of ['10', 'yesterday', '5x', '']) assert.throws(() => parseSince(bad, now), /--since takes/);
  });

  const at = (iso: string, stream: LogEntry['stream'], text: string): LogEntry => ({
    time: Date.parse(iso),
    stream,
    text: Buffer.from(text),
  });

  test('filters and merge', () => {
    const a = [at('2024-05-01T10:00:00.000Z', 'out', 'a1'), at('2024-05-01T10:00:02.000Z', 'err', 'a2')];
    const b = [at('2024-05-01T10:00:01.000Z', 'out', 'b1'), at('2024-05-01T10:00:02.000Z', 'out', 'b2')];
    assert.deepEqual(
      mergeByTime([
        { service: 'a', entries: a },
        { service: 'b', entries: b },
      ]).map((l) => l.entry.text.toString()),
      ['a1', 'b1', 'a2', 'b2'],
    );
    assert.equal(keepEntry(a[1] as LogEntry, { since: null, stderrOnly: true }), true);
    assert.equal(keepEntry(a[0] as LogEntry, { since: null, stderrOnly: true }), false);
    assert.equal(keepEntry(a[0] as LogEntry, { since: Date.parse('2024-05-01T10:00:01Z'), stderrOnly: false }), false);
    assert.equal(displayEntry(a[1] as LogEntry), '2024-05-01T10:00:02.000Z [err] a2');
  });

  test("-n counts the services' own lines, not the supervisor's notes between them", () => {
    const lines = [
      at('2024-05-01T10:00:00Z', 'sys', 'started'),
      at('2024-05-01T10:00:00Z', 'out', '1'),
      at('2024-05-01T10:00:00Z', 'sys', 'note'),
      at('2024-05-01T10:00:00Z', 'out', '2'),
      at('2024-05-01T10:00:00Z', 'err', '3'),
    ];
    const texts = (l: LogEntry[]): string[] => l.map((e) => e.text.toString());
    assert.deepEqual(texts(lastLines(lines, 2, (l) => l)), ['2', '3']);
    assert.deepEqual(texts(lastLines(lines, 3, (l) => l)), ['1', 'note', '2', '3']);
    assert.deepEqual(
      lastLines(lines, 10, (l) => l),
      lines,
    );
    assert.deepEqual(
      lastLines(lines, 0, (l) => l),
      [],
    );
  });

  test('control characters are made visible: no escape sequence reaches the terminal', () => {
    assert.equal(safeText(Buffer.from('\x1b]0;title\x07 \x1b[2J a\0b\tc')), '^[]0;title^G ^[[2J a^@b\tc');
    // C1 controls (a one-byte CSI in some terminals) and DEL; invalid UTF-8 becomes U+FFFD.
    assert.equal(safeText(Buffer.from('\u009b2J \x7f')), '\\u009b2J ^?');
    assert.equal(safeText(Buffer.from([0x61, 0xff, 0x62])), 'a\ufffdb');
    // CRLF output: the CR is dropped, not shown; a lone CR (which would overwrite the line) is shown.
    assert.equal(safeText(Buffer.from('dos\r')), 'dos');
    assert.equal(safeText(Buffer.from('over\rwrite')), 'over^Mwrite');
    assert.equal(safeText(Buffer.from('plain ünïcode')), 'plain ünïcode');
  });

  test('colour only on a terminal and without NO_COLOR', () => {
    assert.equal(useColour({ isTTY: true }, {}), true);
    assert.equal(useColour({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(useColour({ isTTY: true }, { NO_COLOR: '' }), true);
    assert.equal(useColour({ isTTY: false }, {}), false);
    assert.equal(useColour({}, {}), false);
  });
});

describe('adi daemon logs', () => {
  test('--all merges every service by time with a prefix; --stderr and --since filter', async () => {
    const h = await homeWithDaemon();
    // Strictly ordered across the two services: each waits for the other's line in the log first.
    let r = await adi(
      ['daemon', 'start', 'alpha', '--', '/bin/sh', '-c', 'echo one; echo oops >&2; exec sleep 1000'],
      h.env,
    );
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await serviceLog(h.env, 'alpha')).includes('oops'), 20_000, 'alpha output');
    r = await adi(['daemon', 'start', 'bravo', '--', '/bin/sh', '-c', 'echo two; exec sleep 1000'], h.env);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await serviceLog(h.env, 'bravo')).includes('two'), 20_000, 'bravo output');

    r = await adi(['daemon', 'logs', '--all'], h.env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(
      lines.every((l) => /^(alpha|bravo) \| \d{4}-/.test(l)),
      r.stdout,
    );
    const order = lines.filter((l) => / (one|\[err\] oops|two)$/.test(l)).map((l) => l.replace(/ \| \S+ /, ' '));
    assert.deepEqual(order, ['alpha one', 'alpha [err] oops', 'bravo two']);
    // Merged by time: the timestamps never go backwards.
    const times = lines.map((l) => l.split(' ')[2] as string);
    assert.deepEqual([...times].sort(), times);
    assert.ok(!r.stdout.includes(ESC), 'no colour in a pipe');

    r = await adi(['daemon', 'logs', '--all', '--stderr'], h.env);
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(/ \| \S+ /, ' ')),
      ['alpha [err] oops'],
    );
    // Two names merge as --all does.
    assert.equal(
      (await adi(['daemon', 'logs', 'alpha', 'bravo'], h.env)).stdout,
      (await adi(['daemon', 'logs', '--all'], h.env)).stdout,
    );

    r = await adi(['daemon', 'logs', '--all', '--since', '1h'], h.env);
    assert.equal(r.stdout.trim().split('\n').length, lines.length);
    r = await adi(['daemon', 'logs', '--all', '--since', new Date(Date.now() + 3_600_000).toISOString()], h.env);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
    r = await adi(['daemon', 'logs', 'alpha', '--stderr'], h.env);
    assert.match(r.stdout.trim(), /^\S+ \[err\] oops$/);

    r = await adi(['daemon', 'logs', '--all', '--since', 'soon'], h.env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--since takes/);
    r = await adi(['daemon', 'logs'], h.env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--all/);
  });

  test('-f --all follows every service', async () => {
    const h = await homeWithDaemon();
    for (const name of ['tick', 'tock']) {
      const r = await adi(
        [
          'daemon',
          'start',
          name,
          '--',
          '/bin/sh',
          '-c',
          `i=0; while :; do i=$((i+1)); echo ${name} $i; sleep 0.2; done`,
        ],
        h.env,
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const child = spawn(process.execPath, [ADI, 'daemon', 'logs', '--all', '-f'], {
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      // Live lines of both, each prefixed.
      await waitFor(
        () => /^tick \| .* tick \d+$/m.test(out) && /^tock \| .* tock \d+$/m.test(out),
        30_000,
        'lines of both services',
      );
      // No line twice.
      const seen = out.trim().split('\n');
      assert.equal(new Set(seen).size, seen.length, out);
    } finally {
      child.kill('SIGINT');
    }
  });

  test('the prefix is coloured on a terminal, and not with NO_COLOR', async (t) => {
    const h = await homeWithDaemon();
    const r = await adi(['daemon', 'start', 'hue', '--', '/bin/sh', '-c', 'echo colour; exec sleep 1000'], h.env);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await serviceLog(h.env, 'hue')).includes('colour'), 20_000, 'output');
    const coloured = adiInTty(['daemon', 'logs', '--all'], h.env);
    if (coloured === null) {
      t.diagnostic('`script` (util-linux) is not installed: colour on a terminal is untested here');
      return;
    }
    assert.match((await coloured).output.replaceAll(ESC, '<ESC>'), /<ESC>\[3\dmhue \|<ESC>\[0m/);
    const plain = await adiInTty(['daemon', 'logs', '--all'], { ...h.env, NO_COLOR: '1' });
    assert.match(plain?.output ?? '', /hue \| /);
    assert.ok(!(plain?.output ?? '').includes(`${ESC}[3`));
  });
});
