import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { after, test } from 'node:test';
import { AdiError, type ErrorData } from '../../src/core/errors.js';
import { AuditLog, MemoryAudit, auditFile } from '../../src/executor/audit.js';
import { Executor, MAX_REASON_LENGTH } from '../../src/executor/executor.js';
import { resolveCommand } from '../../src/system/resolve.js';
import type { Run, SudoRun } from '../../src/protocol/types.js';
import { ADMIN, ANONYMOUS, type Identity } from '../../src/core/identity.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { readAudit, tempDir, testPaths } from './util.js';

// User names that exist nowhere, so separation is really (not by injection) inactive.
const NO_USER = 'adi-nosuch-test';
const NO_ROOT_USER = 'adi-nosuch-test-root';
const plugin = (name: string): Identity => ({ kind: 'plugin', plugin: name, label: `plugin:${name}` });
const run = (command: string, args: string[] = [], more: Partial<Run> = {}): Run => ({
  type: 'Run',
  command,
  args,
  ...more,
});
const sudo = (command: string, args: string[] = [], reason = 'test', more: Partial<SudoRun> = {}): SudoRun => ({
  type: 'SudoRun',
  command,
  args,
  reason,
  ...more,
});

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function setup(
  separation?: { active: boolean; reason: string },
  limits?: { timeoutMs?: number; maxOutputBytes?: number },
) {
  const root = tempDir();
  dirs.push(root);
  const paths = testPaths(root, NO_USER, NO_ROOT_USER);
  const log = new MemoryLogger();
  const audit = new AuditLog(auditFile(paths), log);
  const ex = new Executor({ paths, log, audit, ...(limits ? { limits } : {}), ...(separation ? { separation } : {}) });
  return { ex, paths, log, file: audit.file };
}

async function rejection(p: Promise<unknown>): Promise<AdiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AdiError);
    return err;
  }
  assert.fail('expected a rejection');
}

void test('without setup, separation is inactive and says why', () => {
  const { ex } = setup();
  assert.equal(ex.separation.active, false);
  assert.match(ex.separation.reason, /sudo adi daemon setup/);
});

void test('without setup, Run runs as the current user and is audited', async () => {
  const { ex, file } = setup();
  const r = await ex.run(ADMIN, run('/usr/bin/id', ['-un']));
  assert.equal(r.type, 'CommandResult');
  assert.equal(r.exit_code, 0);
  assert.equal(Buffer.from(r.stdout).toString().trim(), os.userInfo().username);
  const [line] = readAudit(file);
  assert.equal(line?.action, 'run');
  assert.equal(line?.identity, 'admin');
  assert.deepEqual(line?.argv, [resolveCommand('/usr/bin/id'), '-un']);
  assert.deepEqual(line?.result, { exit_code: 0, signal: null });
  assert.equal(line?.as, os.userInfo().username);
});

void test('without setup, SudoRun is denied with a reason naming the setup command, and audited', async () => {
  const { ex, file } = setup();
  const r = await ex.sudoRun(ADMIN, sudo('/usr/bin/id', ['-u'], 'check uid'), 'any');
  assert.equal(r.type, 'SudoDenied');
  assert.ok(r.type === 'SudoDenied' && r.reason.includes('sudo adi daemon setup'));
  const [line] = readAudit(file);
  assert.equal(line?.action, 'sudo_denied');
  assert.equal(line?.reason, 'check uid');
  assert.ok(String(line?.result.denied).includes('sudo adi daemon setup'));
});

void test('Run resolves bare names through the secure PATH and refuses relative commands', async () => {
  const { ex, file } = setup();
  const r = await ex.run(plugin('p'), run('echo', ['a; b', '$(id)']));
  assert.equal(Buffer.from(r.stdout).toString(), 'a; b $(id)\n');
  const e = await rejection(ex.run(plugin('p'), run('./echo', ['x'])));
  assert.equal(e.code, 'BAD_ARGUMENT');
  const missing = await rejection(ex.run(plugin('p'), run('no-such-program-adi-test')));
  assert.equal(missing.code, 'COMMAND_NOT_FOUND');
  const nul = await rejection(ex.run(plugin('p'), run('echo', ['a\0b'])));
  assert.equal(nul.code, 'BAD_ARGUMENT');
  const lines = readAudit(file);
  assert.deepEqual(
    lines.map((l) => l.result.error ?? l.result.exit_code),
    [0, 'BAD_ARGUMENT', 'COMMAND_NOT_FOUND', 'BAD_ARGUMENT'],
  );
  assert.ok(lines.every((l) => l.identity === 'plugin:p'));
});

void test('anonymous callers may not Run; the attempt is audited', async () => {
  const { ex, file } = setup();
  assert.equal((await rejection(ex.run(ANONYMOUS, run('/usr/bin/id')))).code, 'UNAUTHORIZED');
  assert.equal(readAudit(file)[0]?.identity, 'anonymous');
});

void test('a request can lower the limits but never raise them', async () => {
  const { ex } = setup(undefined, { timeoutMs: 400, maxOutputBytes: 100 });
  const slow = await rejection(ex.run(ADMIN, run('/bin/sleep', ['5'], { timeout_secs: 3600 })));
  assert.equal(slow.code, 'COMMAND_TIMEOUT');
  assert.match(slow.message, /0\.4 s/);
  const big = await rejection(
    ex.run(ADMIN, run('/usr/bin/head', ['-c', '200', '/dev/zero'], { max_output_bytes: 10_000_000 })),
  );
  assert.equal(big.code, 'OUTPUT_TOO_LARGE');
  const lower = await rejection(
    ex.run(ADMIN, run('/usr/bin/head', ['-c', '50', '/dev/zero'], { max_output_bytes: 10 })),
  );
  assert.match(lower.message, /max_output_bytes = 10 bytes/);
  const faster = await rejection(ex.run(ADMIN, run('/bin/sleep', ['5'], { timeout_secs: 0.1 })));
  assert.match(faster.message, /0\.1 s/);
  assert.equal((await rejection(ex.run(ADMIN, run('/bin/true', [], { timeout_secs: -1 })))).code, 'BAD_ARGUMENT');
});

// With separation reported active (injected), every refusal happens before anything runs, so these
// rules are checked without root. The root tests run the allowed cases for real.
void test('SudoRun rules: who may ask, the reason, the command, the patterns', async () => {
  const { ex, file } = setup({ active: true, reason: 'injected for the test' });
  const patterns = ['/usr/bin/id -u', 'echo hello *'];
  const net = plugin('net');
  // The message is for people; `data.rule` (and the command and patterns it concerned) for programs.
  const denied = async (
    id: Identity,
    req: SudoRun,
    approved: readonly string[] | 'any',
    why: RegExp,
    data: ErrorData,
  ) => {
    const r = await ex.sudoRun(id, req, approved);
    assert.equal(r.type, 'SudoDenied', `${req.command} ${JSON.stringify(req.args)} should be denied`);
    assert.match(r.type === 'SudoDenied' ? r.reason : '', why);
    assert.deepEqual(r.type === 'SudoDenied' ? r.data : null, data, `${req.command} ${JSON.stringify(req.args)}`);
  };
  const id = resolveCommand('/usr/bin/id');
  const notApproved = (args: string[], approved = patterns): ErrorData => ({
    rule: 'not_approved',
    command: [id, ...args],
    patterns: approved,
  });
  await denied(ANONYMOUS, sudo('/usr/bin/id', ['-u']), 'any', /anonymous/, { rule: 'anonymous' });
  await denied(net, sudo('/usr/bin/id', ['-u'], ''), patterns, /needs a reason/, { rule: 'no_reason' });
  await denied(net, sudo('/usr/bin/id', ['-u'], '   '), patterns, /needs a reason/, { rule: 'no_reason' });
  await denied(net, sudo('/usr/bin/id', ['-u'], 'x'.repeat(MAX_REASON_LENGTH + 1)), patterns, /at most 1000/, {
    rule: 'reason_too_long',
  });
  await denied(net, sudo('/usr/bin/whoami'), patterns, /not among the approved/, {
    rule: 'not_approved',
    command: [resolveCommand('/usr/bin/whoami')],
    patterns,
  });
  await denied(net, sudo('/usr/bin/id', ['-u', '-n']), patterns, /match none/, notApproved(['-u', '-n']));
  await denied(net, sudo('/usr/bin/id', []), patterns, /match none/, notApproved([]));
  await denied(net, sudo('/usr/bin/id', ['-u; rm -rf /']), patterns, /match none/, notApproved(['-u; rm -rf /']));
  await denied(net, sudo('/usr/bin/id', ['-u\n-n']), patterns, /match none/, notApproved(['-u\n-n']));
  await denied(net, sudo('/usr/bin/id', ['-u && id']), patterns, /match none/, notApproved(['-u && id']));
  await denied(net, sudo('./id', ['-u']), patterns, /relative/, { rule: 'bad_command' });
  await denied(net, sudo('bin/id', ['-u']), patterns, /relative/, { rule: 'bad_command' });
  await denied(net, sudo('id\0', ['-u']), patterns, /NUL/, { rule: 'bad_command' });
  await denied(net, sudo('/usr/bin/id', ['-u']), 'any', /no blanket root access/, {
    rule: 'blanket_root',
    command: [id, '-u'],
  });
  await denied(net, sudo('/usr/bin/id', ['-u']), [], /no privileged commands are approved/, notApproved(['-u'], []));
  const broken = ['*', 'nosuch-adi-cmd -u'];
  await denied(net, sudo('/usr/bin/id', ['-u']), broken, /could not be used/, notApproved(['-u'], broken));
  await denied(net, sudo('/usr/bin/id', ['-u'], 'ok', { timeout_secs: 0 }), patterns, /timeout_secs/, {
    rule: 'bad_command',
  });
  const lines = readAudit(file);
  assert.equal(lines.length, 17, 'every denial is audited');
  assert.ok(lines.every((l) => l.action === 'sudo_denied'));
  assert.equal(lines.filter((l) => l.identity === 'plugin:net').length, 16);
  assert.deepEqual(lines[9]?.argv, [resolveCommand('/usr/bin/id'), '-u && id']);
});

void test('a plugin pattern on a binary others can replace is denied', async () => {
  const { ex } = setup({ active: true, reason: 'injected for the test' });
  const d = tempDir();
  dirs.push(d);
  fs.chmodSync(d, 0o777);
  const tool = `${d}/tool`;
  fs.copyFileSync(resolveCommand('true'), tool);
  fs.chmodSync(tool, 0o755);
  const r = await ex.sudoRun(plugin('p'), sudo(tool), [tool]);
  assert.equal(r.type, 'SudoDenied');
  assert.match(r.type === 'SudoDenied' ? r.reason : '', /not safe to run as root/);
  assert.deepEqual(r.type === 'SudoDenied' ? r.data : null, {
    rule: 'untrusted_program',
    command: [tool],
    pattern: tool,
  });
});

void test('MemoryAudit collects entries', async () => {
  const root = tempDir();
  dirs.push(root);
  const audit = new MemoryAudit();
  const ex = new Executor({ paths: testPaths(root, NO_USER, NO_ROOT_USER), log: new MemoryLogger(), audit });
  await ex.run(ADMIN, run('/bin/true'));
  assert.equal(audit.entries.length, 1);
});
