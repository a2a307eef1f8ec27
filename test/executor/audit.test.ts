import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { AUDIT_MAX_ARG_CHARS, AuditLog, auditFile } from '../../src/executor/audit.js';
import { MemoryLogger } from '../../src/server/logger.js';
import { readAudit, tempDir, testPaths } from './util.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

void test('one JSON object per line, in <logsDir>/audit.log, mode 0600', () => {
  const root = tempDir();
  dirs.push(root);
  const paths = testPaths(root, 'adi', 'adi-root');
  const log = new MemoryLogger();
  const audit = new AuditLog(auditFile(paths), log);
  assert.equal(audit.file, path.join(paths.logsDir, 'audit.log'));
  audit.record({ identity: 'admin', action: 'run', argv: ['/usr/bin/id', '-un'], reason: null, result: { exit_code: 0, signal: null }, as: 'alice' });
  audit.record({ identity: 'plugin:net', action: 'sudo_denied', argv: ['/usr/bin/id', '-u\nforged line'], reason: 'why\nnot', result: { denied: 'outside its patterns' } });
  audit.record({ identity: 'plugin:net', action: 'sudo_run', argv: ['/usr/sbin/x'], reason: 'r', result: { error: 'COMMAND_TIMEOUT' }, pattern: '/usr/sbin/x' });
  audit.record({ identity: 'admin', action: 'privileged_service', argv: ['/usr/sbin/y'], reason: null, result: { exit_code: 0, signal: null } });
  const text = fs.readFileSync(audit.file, 'utf8');
  assert.equal(text.split('\n').length, 5, 'four lines and the final newline: a newline in an argument forges nothing');
  const lines = readAudit(audit.file);
  assert.deepEqual(lines.map((l) => l.action), ['run', 'sudo_denied', 'sudo_run', 'privileged_service']);
  assert.deepEqual(lines[1]?.argv, ['/usr/bin/id', '-u\nforged line']);
  assert.equal(lines[1]?.reason, 'why\nnot');
  assert.deepEqual(lines[1]?.result, { denied: 'outside its patterns' });
  assert.equal(lines[0]?.as, 'alice');
  assert.equal(lines[2]?.pattern, '/usr/sbin/x');
  for (const l of lines) {
    assert.ok(!Number.isNaN(Date.parse(l.time)));
    assert.deepEqual(Object.keys(l).slice(0, 6), ['time', 'identity', 'action', 'argv', 'reason', 'result']);
  }
  assert.equal(fs.statSync(audit.file).mode & 0o777, 0o600);
  assert.deepEqual(log.lines, []);
});

void test('appends to an existing log and tightens its mode', () => {
  const root = tempDir();
  dirs.push(root);
  const file = path.join(root, 'logs', 'audit.log');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, '{"old":true}\n', { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  new AuditLog(file, new MemoryLogger()).record({ identity: 'admin', action: 'run', argv: ['x'], reason: null, result: { exit_code: 1, signal: null } });
  const text = fs.readFileSync(file, 'utf8').split('\n');
  assert.equal(text[0], '{"old":true}');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});

void test('long arguments are cut and marked', () => {
  const root = tempDir();
  dirs.push(root);
  const file = path.join(root, 'audit.log');
  new AuditLog(file, new MemoryLogger()).record({ identity: 'admin', action: 'run', argv: ['x', 'y'.repeat(100_000)], reason: 'z'.repeat(5000), result: { exit_code: 0, signal: null } });
  const [line] = readAudit(file);
  assert.equal(line?.argv[1]?.length, AUDIT_MAX_ARG_CHARS);
  assert.equal(line?.argv_truncated, true);
  assert.equal(line?.reason?.length, 1000);
});

void test('a symlink at the audit path is not followed; failures go to the daemon log, never thrown', () => {
  const root = tempDir();
  dirs.push(root);
  const target = path.join(root, 'elsewhere');
  fs.writeFileSync(target, '');
  const file = path.join(root, 'audit.log');
  fs.symlinkSync(target, file);
  const log = new MemoryLogger();
  new AuditLog(file, log).record({ identity: 'admin', action: 'run', argv: ['x'], reason: null, result: { exit_code: 0, signal: null } });
  assert.equal(fs.readFileSync(target, 'utf8'), '');
  assert.equal(log.lines.length, 1);
  assert.match(log.lines[0] ?? '', /^ERROR audit: could not write/);

  const notADir = path.join(root, 'plain-file');
  fs.writeFileSync(notADir, '');
  const log2 = new MemoryLogger();
  new AuditLog(path.join(notADir, 'logs', 'audit.log'), log2).record({ identity: 'admin', action: 'run', argv: ['x'], reason: null, result: { exit_code: 0, signal: null } });
  assert.equal(log2.lines.length, 1);
});
