import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { AdiError } from '../../src/core/errors.js';
import { SECURE_PATH, resolveCommand, untrustedReason } from '../../src/system/resolve.js';
import { tempDir } from '../executor/util.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function errorOf(fn: () => unknown): AdiError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AdiError);
    return err;
  }
  assert.fail('expected an error');
}

void test('/bin/echo and /usr/bin/echo resolve to the same path', () => {
  const a = resolveCommand('/bin/echo');
  const b = resolveCommand('/usr/bin/echo');
  assert.equal(a, b);
  assert.ok(path.isAbsolute(a));
  assert.equal(resolveCommand('/usr/bin/../bin/echo'), b);
  assert.equal(resolveCommand('//usr//bin//echo'), b);
});

void test('a bare name is looked up in the secure PATH only, never the caller PATH', () => {
  const d = tempDir();
  dirs.push(d);
  const fake = path.join(d, 'echo');
  fs.writeFileSync(fake, '#!/bin/sh\necho hijacked\n', { mode: 0o755 });
  const saved = process.env.PATH;
  process.env.PATH = `${d}:${saved ?? ''}`;
  try {
    const r = resolveCommand('echo');
    assert.equal(r, resolveCommand('/usr/bin/echo'));
    assert.notEqual(r, fake);
    assert.ok(SECURE_PATH.split(':').some((dir) => r.startsWith(fs.realpathSync(dir) + '/')));
  } finally {
    process.env.PATH = saved;
  }
});

void test('relative paths are refused; missing and non-executable files are not found', () => {
  for (const rel of ['./echo', 'bin/echo', '../usr/bin/echo', 'usr/bin/echo']) {
    const e = errorOf(() => resolveCommand(rel));
    assert.equal(e.code, 'BAD_ARGUMENT', rel);
    assert.match(e.message, /relative/);
  }
  const missing = errorOf(() => resolveCommand('no-such-program-adi-test'));
  assert.equal(missing.code, 'COMMAND_NOT_FOUND');
  assert.ok(missing.message.includes(SECURE_PATH), 'names what was searched');
  assert.equal(errorOf(() => resolveCommand('/usr/bin')).code, 'COMMAND_NOT_FOUND');
  assert.equal(errorOf(() => resolveCommand('/usr/bin/')).code, 'COMMAND_NOT_FOUND');
  assert.equal(errorOf(() => resolveCommand('/etc/passwd')).code, 'COMMAND_NOT_FOUND');
  assert.equal(errorOf(() => resolveCommand('/nonexistent/x')).code, 'COMMAND_NOT_FOUND');
  assert.equal(errorOf(() => resolveCommand('')).code, 'BAD_ARGUMENT');
  assert.equal(errorOf(() => resolveCommand('ec\0ho')).code, 'BAD_ARGUMENT');
  assert.equal(errorOf(() => resolveCommand('.')).code, 'COMMAND_NOT_FOUND');
  assert.equal(errorOf(() => resolveCommand('..')).code, 'COMMAND_NOT_FOUND');
});

void test('the last component is kept when it is a symlink (multi-call binaries need their name)', () => {
  const d = tempDir();
  dirs.push(d);
  const link = path.join(d, 'my-echo');
  fs.symlinkSync('/usr/bin/echo', link);
  assert.equal(resolveCommand(link), path.join(fs.realpathSync(d), 'my-echo'));
});

void test('untrustedReason accepts root-owned system binaries and refuses files others can change', () => {
  assert.equal(untrustedReason(resolveCommand('id')), null);
  const d = tempDir();
  dirs.push(d);
  const f = path.join(d, 'tool');
  fs.copyFileSync(resolveCommand('true'), f);
  fs.chmodSync(f, 0o755);
  fs.chmodSync(d, 0o777);
  // The directory (or, for a non-root run, the owner) makes it replaceable by someone other than root.
  assert.notEqual(untrustedReason(f), null);
  const link = path.join(d, 'link');
  fs.symlinkSync(resolveCommand('true'), link);
  assert.notEqual(untrustedReason(link), null, 'a link in a writable directory can be re-pointed');
});
