import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { AdiError } from '../../src/core/errors.js';
import { cleanEnv } from '../../src/system/privilege.js';
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_TIMEOUT_MS,
  runCommand,
  signalNumber,
  type RunOptions,
} from '../../src/system/run.js';
import { readPidFile, tempDir, waitDead } from '../executor/util.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const opts = (more: Partial<RunOptions> = {}): RunOptions => ({
  env: cleanEnv(),
  cwd: '/',
  timeoutMs: 10_000,
  ...more,
});
const node = (script: string, ...args: string[]) => ({ file: process.execPath, args: ['-e', script, ...args] });
const sh = (script: string, ...args: string[]) => ({ file: '/bin/sh', args: ['-c', script, 'sh', ...args] });

async function rejection(p: Promise<unknown>): Promise<AdiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AdiError, `expected an AdiError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the promise to reject');
}

void test('defaults: 60 s and 16 MiB', () => {
  assert.equal(DEFAULT_TIMEOUT_MS, 60_000);
  assert.equal(DEFAULT_MAX_OUTPUT_BYTES, 16 * 1024 * 1024);
});

void test('stdout and stderr are captured byte for byte (all 256 byte values)', async () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const r = await runCommand(
    node(
      `const b = Buffer.from(Array.from({length: 256}, (_, i) => i)); process.stdout.write(b); process.stderr.write(Buffer.from(b).reverse());`,
    ),
    opts(),
  );
  assert.equal(r.exit_code, 0);
  assert.equal(r.signal, null);
  assert.deepEqual(r.stdout, all);
  assert.deepEqual(r.stderr, Buffer.from(all).reverse());
});

void test('exit code 7 is reported as is', async () => {
  const r = await runCommand(node('process.exit(7)'), opts());
  assert.equal(r.exit_code, 7);
  assert.equal(r.signal, null);
});

void test('a command killed by a signal reports 128 + its number', async () => {
  const r = await runCommand(sh('kill -TERM $$'), opts());
  assert.equal(r.signal, 'SIGTERM');
  assert.equal(r.exit_code, 128 + (signalNumber('SIGTERM') ?? 0));
  const k = await runCommand(sh('kill -KILL $$'), opts());
  assert.equal(k.exit_code, 137);
});

void test('no shell is involved: metacharacters reach the program as plain bytes', async () => {
  const r = await runCommand({ file: '/bin/echo', args: ['a; id', '$(id)', '`id`', '&& id', '*'] }, opts());
  assert.equal(r.stdout.toString(), 'a; id $(id) `id` && id *\n');
});

void test('the environment is exactly the one given', async () => {
  const saved = process.env.LD_PRELOAD;
  process.env.ADI_SECRET_TEST = 'leak';
  try {
    const r = await runCommand({ file: '/usr/bin/env', args: [] }, opts());
    const lines = r.stdout.toString().trim().split('\n').sort();
    assert.deepEqual(
      lines,
      Object.entries(cleanEnv())
        .map(([k, v]) => `${k}=${v}`)
        .sort(),
    );
  } finally {
    delete process.env.ADI_SECRET_TEST;
    if (saved !== undefined) process.env.LD_PRELOAD = saved;
  }
});

void test('a timeout kills the whole process group, grandchildren included, and names the limit', async () => {
  const d = tempDir();
  dirs.push(d);
  const pidFile = path.join(d, 'grandchild.pid');
  // sh -> sh -> sleep: the sleep is a grandchild of the command.
  const started = Date.now();
  const e = await rejection(
    runCommand(sh('sh -c \'sleep 300 & echo $! > "$1"; wait\' inner "$1" & wait', pidFile), opts({ timeoutMs: 700 })),
  );
  assert.equal(e.code, 'COMMAND_TIMEOUT');
  assert.match(e.message, /timeout_secs = 0\.7 s/);
  assert.ok(Date.now() - started < 5000);
  const pid = await readPidFile(pidFile);
  assert.ok(await waitDead(pid), `grandchild ${pid} survived the timeout`);
});

void test('output past the limit kills the group and names the limit', async () => {
  const e = await rejection(
    runCommand(
      node('process.stdout.write(Buffer.alloc(1 << 20, 97)); setTimeout(() => {}, 30000)'),
      opts({ maxOutputBytes: 1000 }),
    ),
  );
  assert.equal(e.code, 'OUTPUT_TOO_LARGE');
  assert.match(e.message, /max_output_bytes = 1000 bytes/);
  // Both streams count together.
  const both = await rejection(
    runCommand(
      node('process.stdout.write("x".repeat(600)); process.stderr.write("y".repeat(600))'),
      opts({ maxOutputBytes: 1000 }),
    ),
  );
  assert.equal(both.code, 'OUTPUT_TOO_LARGE');
  // Exactly the limit is fine.
  const ok = await runCommand(
    node('process.stdout.write("x".repeat(600)); process.stderr.write("y".repeat(400))'),
    opts({ maxOutputBytes: 1000 }),
  );
  assert.equal(ok.stdout.length + ok.stderr.length, 1000);
});

void test('nothing outlives the command: leftovers in its group are killed when it exits', async () => {
  const started = Date.now();
  // The background sleep keeps stdout open; without the group kill this would wait for the timeout.
  const r = await runCommand(sh('sleep 300 & echo $!'), opts({ timeoutMs: 20_000 }));
  assert.equal(r.exit_code, 0);
  assert.ok(Date.now() - started < 5000, 'did not wait for the background process');
  assert.ok(await waitDead(Number(r.stdout.toString().trim())));
  const quiet = await runCommand(sh('sleep 300 >/dev/null 2>&1 & echo $!'), opts());
  assert.ok(await waitDead(Number(quiet.stdout.toString().trim())));
});

void test('a missing program is COMMAND_NOT_FOUND; bad limits are BAD_ARGUMENT', async () => {
  assert.equal(
    (await rejection(runCommand({ file: '/nonexistent/program', args: [] }, opts()))).code,
    'COMMAND_NOT_FOUND',
  );
  assert.equal(
    (await rejection(runCommand({ file: '/bin/true', args: [] }, opts({ timeoutMs: 0 })))).code,
    'BAD_ARGUMENT',
  );
  assert.equal(
    (await rejection(runCommand({ file: '/bin/true', args: [] }, opts({ maxOutputBytes: -1 })))).code,
    'BAD_ARGUMENT',
  );
});

void test('aborting kills the group and rejects with CANCELLED', async () => {
  const ac = new AbortController();
  const p = runCommand(sh('sleep 300'), opts({ signal: ac.signal }));
  setTimeout(() => ac.abort(), 100);
  assert.equal((await rejection(p)).code, 'CANCELLED');
  const pre = new AbortController();
  pre.abort();
  assert.equal((await rejection(runCommand(sh('true'), opts({ signal: pre.signal })))).code, 'CANCELLED');
});

void test('the group killer is used when a limit is hit', async () => {
  const d = tempDir();
  dirs.push(d);
  const marker = path.join(d, 'killer-ran');
  const e = await rejection(
    runCommand(
      sh('sleep 300'),
      opts({
        timeoutMs: 300,
        groupKiller: (pgid) => ({ file: '/bin/sh', args: ['-c', 'echo "$1" > "$2"', 'sh', String(pgid), marker] }),
      }),
    ),
  );
  assert.equal(e.code, 'COMMAND_TIMEOUT');
  const pgid = await readPidFile(marker);
  assert.ok(pgid > 1);
});
