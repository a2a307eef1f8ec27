// Any bytes a service writes are stored and read back without failing a reader: a service printing a
// NUL, an OSC title sequence and a screen clear, invalid UTF-8 and a 20 MB line. `adi daemon logs`,
// `logs --all`, `logs -f` and the client's serviceLogs() all succeed; no raw ESC (or other control
// character) reaches the terminal unless --raw, which gives the bytes as they are. And a Cancel that
// arrives with the request itself ends the stream with StreamEnd, not an error.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { encodeFrame } from '../../src/wire/codec.js';
import { ADI, adi, FIXTURES, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { startDaemon } from './helpers.js';

const ESC = '\x1b';
const MAX_LINE = 64 * 1024;
let h: TempHome;
let client: DaemonClient;

before(async () => {
  h = tempHome();
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  fs.writeFileSync(
    h.paths.servicesFile,
    [
      `[nasty]\ncommand = ${JSON.stringify(process.execPath)}\nargs = [${JSON.stringify(path.join(FIXTURES, 'nasty-output.js'))}]\nauto_start = true\nlog_max_bytes = 67108864\n`,
      `[calm]\ncommand = "/bin/sh"\nargs = ["-c", "echo calm; exec sleep 1000"]\nauto_start = true\n`,
    ].join('\n'),
  );
  await startDaemon(h);
  client = new DaemonClient({ env: h.env, timeoutMs: 60_000 });
  await waitFor(
    async () => (await client.serviceLogs('nasty', { lines: 3 })).some((l) => l.endsWith(' out done')),
    30_000,
    'nasty to finish writing',
  );
});
after(async () => {
  client.close();
  await h.cleanup();
});

/** No control character but newline and tab in what a terminal would get. */
function assertSafe(text: string): void {
  // oxlint-disable-next-line no-control-regex -- finding control characters is the point
  const bad = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/.exec(text);
  assert.equal(bad, null, `a raw control character ${JSON.stringify(bad?.[0])} reached the terminal`);
}

describe('log bytes', () => {
  test('serviceLogs() returns every line: NUL kept, invalid UTF-8 as U+FFFD, the 20 MB line in 64 KiB pieces', async () => {
    const lines = await client.serviceLogs('nasty', { lines: 1000 });
    const out = lines.map((l) => l.replace(/^\S+ /, '')).filter((l) => l.startsWith('out '));
    assert.equal(out[0], 'out nul a\0b');
    assert.equal(out[1], `out title ${ESC}]0;pwned\x07 clear ${ESC}[2J`);
    assert.equal(out[2], 'out bad \ufffd\ufffd\ufffd');
    const pieces = out.slice(3, -1);
    assert.equal(pieces.length, Math.ceil((20 * 1024 * 1024) / MAX_LINE));
    assert.equal(
      pieces.reduce((n, p) => n + p.length - 4, 0),
      20 * 1024 * 1024,
    );
    assert.equal(out[out.length - 1], 'out done');
    // The bytes themselves, through readServiceLogs().
    const bytes: Buffer[] = [];
    for await (const batch of client.readServiceLogs('nasty', { lines: 3 + pieces.length + 1 }))
      for (const e of batch) if (e.stream === 'out') bytes.push(e.text);
    assert.deepEqual(bytes[2], Buffer.concat([Buffer.from('bad '), Buffer.from([0xff, 0xfe, 0xc3])]));
  });

  test('adi daemon logs, --all and -f succeed and show control characters visibly; --raw gives them as they are', async () => {
    let r = await adi(['daemon', 'logs', 'nasty', '-n', '5'], h.env);
    assert.equal(r.code, 0, r.stderr);
    assertSafe(r.stdout);
    r = await adi(['daemon', 'logs', 'nasty', '-n', '400'], h.env, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assertSafe(r.stdout);
    assert.match(r.stdout, / nul a\^@b$/m);
    assert.match(r.stdout, / title \^\[\]0;pwned\^G clear \^\[\[2J$/m);
    assert.match(r.stdout, / bad \ufffd\ufffd\ufffd$/m);
    assert.match(r.stdout, / done$/m);

    r = await adi(['daemon', 'logs', '--all', '-n', '400'], h.env, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assertSafe(r.stdout);
    assert.match(r.stdout, /^nasty \| \S+ nul a\^@b$/m);
    assert.match(r.stdout, /^calm {2}\| \S+ calm$/m);

    r = await adi(['daemon', 'logs', 'nasty', '-n', '400', '--raw'], h.env, { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(`title ${ESC}]0;pwned\x07 clear ${ESC}[2J`), 'raw bytes with --raw');
    assert.ok(r.stdout.includes('nul a\0b'));

    // -f: the whole log, then it keeps going; it must not die on any of these lines.
    const child = spawn(process.execPath, [ADI, 'daemon', 'logs', 'nasty', '-f', '-n', '400'], {
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    let exited: number | null = null;
    child.once('exit', (code) => (exited = code));
    try {
      await waitFor(() => / done$/m.test(out), 30_000, 'logs -f to show the last line');
      await client.restartService('calm');
      assert.equal(exited, null, 'logs -f is still following');
      assertSafe(out);
      assert.match(out, / nul a\^@b$/m);
    } finally {
      child.kill('SIGINT');
    }
  });

  test('a Cancel in the same write as its follow request ends the stream with StreamEnd', async () => {
    const token = fs.readFileSync(h.paths.tokenFile, 'utf8');
    for (let round = 0; round < 20; round++) {
      const peer = await RawPeer.connect(h.paths.socket);
      try {
        peer.write(
          Buffer.concat([
            encodeFrame({ id: 0, type: 'Hello', protocol: PROTOCOL_VERSION, client: 'cancel-test', token }, 1 << 20),
            encodeFrame({ id: 1, type: 'ServiceLogs', name: 'nasty', lines: 1000, follow: true }, 1 << 20),
            encodeFrame({ id: 2, type: 'Cancel', target: 1 }, 1 << 20),
          ]),
        );
        const end = await peer.waitFrame((f) => f['id'] === 1 && f['type'] !== 'LogBatch', 20_000);
        assert.equal(end?.['type'], 'StreamEnd', JSON.stringify(end));
        assert.match(String(end?.['cursor']), /^[0-9a-f]{16}\.\d+\.\d+$/);
      } finally {
        peer.close();
      }
    }
  });
});
