import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  AUDIT_MAX_ARGV_BYTES,
  AUDIT_MAX_LINE_BYTES,
  AUDIT_MAX_TEXT_BYTES,
  AuditLog,
  auditFile,
  formatAuditLine,
  type AuditEntry,
} from '../../src/executor/audit.js';
import { rotatedPath } from '../../src/core/rotate-file.js';
import { MemoryLogger } from '../../src/core/logger.js';
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
  audit.record({
    identity: 'admin',
    action: 'run',
    argv: ['/usr/bin/id', '-un'],
    reason: null,
    result: { exit_code: 0, signal: null },
    as: 'alice',
  });
  audit.record({
    identity: 'plugin:net',
    action: 'sudo_denied',
    argv: ['/usr/bin/id', '-u\nforged line'],
    reason: 'why\nnot',
    result: { denied: 'outside its patterns' },
  });
  audit.record({
    identity: 'plugin:net',
    action: 'sudo_run',
    argv: ['/usr/sbin/x'],
    reason: 'r',
    result: { error: 'COMMAND_TIMEOUT' },
    pattern: '/usr/sbin/x',
  });
  audit.record({
    identity: 'admin',
    action: 'privileged_service',
    argv: ['/usr/sbin/y'],
    reason: null,
    result: { exit_code: 0, signal: null },
  });
  const text = fs.readFileSync(audit.file, 'utf8');
  assert.equal(text.split('\n').length, 5, 'four lines and the final newline: a newline in an argument forges nothing');
  const lines = readAudit(audit.file);
  assert.deepEqual(
    lines.map((l) => l.action),
    ['run', 'sudo_denied', 'sudo_run', 'privileged_service'],
  );
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
  new AuditLog(file, new MemoryLogger()).record({
    identity: 'admin',
    action: 'run',
    argv: ['x'],
    reason: null,
    result: { exit_code: 1, signal: null },
  });
  const text = fs.readFileSync(file, 'utf8').split('\n');
  assert.equal(text[0], '{"old":true}');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
});

void test('long arguments are cut and marked, counted in bytes after escaping', () => {
  const root = tempDir();
  dirs.push(root);
  const file = path.join(root, 'audit.log');
  new AuditLog(file, new MemoryLogger()).record({
    identity: 'admin',
    action: 'run',
    argv: ['x', 'y'.repeat(100_000)],
    reason: 'z'.repeat(5000),
    result: { exit_code: 0, signal: null },
  });
  const [line] = readAudit(file);
  assert.equal(line?.argv[0], 'x');
  assert.ok(line?.argv[1]?.startsWith('yyyy'));
  assert.equal(JSON.stringify(line?.argv).length, AUDIT_MAX_ARGV_BYTES, 'the argv fills its share exactly');
  assert.equal(line?.argv_truncated, true);
  assert.equal((line as unknown as { argv_count: number }).argv_count, 2);
  assert.equal(JSON.stringify(line?.reason).length, AUDIT_MAX_TEXT_BYTES);
});

void test('a line of control characters stays within its byte bound (each one escapes to six bytes)', () => {
  const ctl = '\u0001'.repeat(4096);
  const entry: AuditEntry = {
    identity: 'anonymous',
    action: 'sudo_denied',
    argv: Array.from({ length: 256 }, () => ctl),
    reason: ctl,
    result: { denied: ctl },
    pattern: ctl,
    as: ctl,
    request: 'SudoRun',
    service: ctl,
  };
  const line = formatAuditLine(entry);
  assert.ok(Buffer.byteLength(line) <= AUDIT_MAX_LINE_BYTES, `${Buffer.byteLength(line)} bytes`);
  const parsed = JSON.parse(line) as { argv: string[]; argv_truncated: boolean; argv_count: number; reason: string };
  assert.equal(parsed.argv_truncated, true);
  assert.equal(parsed.argv_count, 256);
  assert.ok(parsed.argv.every((a) => [...a].every((ch) => ch === '\u0001')));
  assert.ok(Buffer.byteLength(JSON.stringify(parsed.argv)) <= AUDIT_MAX_ARGV_BYTES);
  // Multi-byte characters count by their UTF-8 size, and are never split.
  const wide = formatAuditLine({
    identity: 'admin',
    action: 'run',
    argv: ['€'.repeat(10_000)],
    reason: null,
    result: { exit_code: 0, signal: null },
  });
  const arg = (JSON.parse(wide) as { argv: string[] }).argv[0] ?? '';
  assert.ok(/^€+$/.test(arg));
  assert.ok(Buffer.byteLength(JSON.stringify([arg])) <= AUDIT_MAX_ARGV_BYTES);
});

void test('rotates by size: audit.log and its rotated files stay under the cap', () => {
  const root = tempDir();
  dirs.push(root);
  const file = path.join(root, 'audit.log');
  // No rate limit here (a burst larger than the entries): only rotation bounds the files.
  const audit = new AuditLog(file, new MemoryLogger(), { maxBytes: 400 * 1024, maxFiles: 2, burst: 1e9 });
  assert.ok(audit.maxBytes <= 400 * 1024);
  const big = 'a'.repeat(20_000);
  for (let i = 0; i < 300; i++) {
    audit.record({
      identity: `plugin:p${i}`,
      action: 'run',
      argv: ['/bin/x', big],
      reason: null,
      result: { exit_code: i, signal: null },
    });
  }
  const files = [file, rotatedPath(file, 1), rotatedPath(file, 2)];
  const total = files.reduce((n, f) => n + fs.statSync(f).size, 0);
  assert.ok(total <= audit.maxBytes, `${total} bytes on disk, cap ${audit.maxBytes}`);
  assert.equal(fs.existsSync(rotatedPath(file, 3)), false, 'only maxFiles rotated files are kept');
  // The newest entry is in audit.log, whole.
  const last = readAudit(file).at(-1);
  assert.equal(last?.identity, 'plugin:p299');
  for (const f of files) for (const l of readAudit(f)) assert.equal(typeof l.time, 'string');
});

void test('repeated entries are rate limited per kind, with a summary line of how many were left out', () => {
  const root = tempDir();
  dirs.push(root);
  const file = path.join(root, 'audit.log');
  let now = Date.parse('2026-01-01T00:00:00Z');
  const audit = new AuditLog(file, new MemoryLogger(), { burst: 5, perSecond: 2, now: () => now });
  const denied = (identity: string): AuditEntry => ({
    identity,
    action: 'sudo_denied',
    argv: ['/bin/x'],
    reason: 'r',
    result: { denied: 'no' },
  });
  for (let i = 0; i < 105; i++) audit.record(denied('anonymous'));
  // Another kind (another identity, or another result) has its own allowance.
  audit.record(denied('plugin:ok'));
  audit.record({
    identity: 'anonymous',
    action: 'run',
    argv: ['/bin/x'],
    reason: null,
    result: { exit_code: 0, signal: null },
  });
  let lines = readAudit(file);
  assert.equal(lines.filter((l) => l.identity === 'anonymous' && l.action === 'sudo_denied').length, 5, 'the burst');
  assert.equal(lines.filter((l) => l.identity === 'plugin:ok').length, 1);
  assert.equal(lines.filter((l) => l.action === 'run').length, 1);
  audit.flush();
  lines = readAudit(file);
  const summary = lines.at(-1) as unknown as {
    action: string;
    identity: string;
    count: number;
    message: string;
    similar: Record<string, string>;
  };
  assert.equal(summary.action, 'suppressed');
  assert.equal(summary.identity, 'anonymous');
  assert.equal(summary.count, 100);
  assert.equal(summary.message, '100 similar entries suppressed');
  assert.deepEqual(summary.similar, { action: 'sudo_denied', result: 'denied' });
  // Tokens come back with time: one second later, two more are written.
  now += 1000;
  for (let i = 0; i < 3; i++) audit.record(denied('anonymous'));
  audit.flush();
  lines = readAudit(file);
  assert.deepEqual(
    lines.slice(-3).map((l) => l.action),
    ['sudo_denied', 'sudo_denied', 'suppressed'],
  );
  assert.equal((lines.at(-1) as unknown as { count: number }).count, 1);
});

void test('a symlink at the audit path is not followed; failures go to the daemon log, never thrown', () => {
  const root = tempDir();
  dirs.push(root);
  const target = path.join(root, 'elsewhere');
  fs.writeFileSync(target, '');
  const file = path.join(root, 'audit.log');
  fs.symlinkSync(target, file);
  const log = new MemoryLogger();
  new AuditLog(file, log).record({
    identity: 'admin',
    action: 'run',
    argv: ['x'],
    reason: null,
    result: { exit_code: 0, signal: null },
  });
  assert.equal(fs.readFileSync(target, 'utf8'), '');
  assert.equal(log.lines.length, 1);
  assert.match(log.lines[0] ?? '', /^ERROR audit: could not write/);

  const notADir = path.join(root, 'plain-file');
  fs.writeFileSync(notADir, '');
  const log2 = new MemoryLogger();
  new AuditLog(path.join(notADir, 'logs', 'audit.log'), log2).record({
    identity: 'admin',
    action: 'run',
    argv: ['x'],
    reason: null,
    result: { exit_code: 0, signal: null },
  });
  assert.equal(log2.lines.length, 1);
});
