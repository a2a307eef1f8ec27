// A service log's owner (src/logs/owner.ts): a log claimed by another owner than the one recorded
// starts empty; the earlier owner's segments move to .previous/, or are deleted when they cannot move.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { claimLog, PREVIOUS_DIR } from '../../src/logs/owner.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function logsDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-owner-'));
  dirs.push(d);
  return d;
}
function write(dir: string, ...files: string[]): void {
  for (const f of files) fs.writeFileSync(path.join(dir, f), `lines of ${f}\n`);
}
const owner = (dir: string, name: string) => fs.readFileSync(path.join(dir, `${name}.owner`), 'utf8');
const none = { moved: null, removed: false, unrecorded: null };

test('the first claim records the owner; the same owner again changes nothing', () => {
  const dir = logsDir();
  assert.deepEqual(claimLog(dir, 'web', 'plugin:net'), none);
  assert.equal(owner(dir, 'web'), 'plugin:net\n');
  write(dir, 'web.log', 'web.idx');
  assert.deepEqual(claimLog(dir, 'web', 'plugin:net'), none);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['web.idx', 'web.log', 'web.owner']);
});

test("another owner's claim moves every segment of that log, and only that log, aside", () => {
  const dir = logsDir();
  claimLog(dir, 'a.b', 'admin');
  // Neighbours whose names share a prefix, or match it only as a pattern, are not this log's.
  write(dir, 'a.b.log', 'a.b.idx', 'a.b.log.1', 'a.b.idx.1', 'a.b.log.2', 'a.bc.log', 'aXb.log', 'a.b.log.x');
  const claim = claimLog(dir, 'a.b', 'plugin:p');
  assert.ok(claim.moved !== null && claim.moved.startsWith(path.join(dir, PREVIOUS_DIR, 'a.b.')));
  assert.equal(claim.removed, false);
  assert.deepEqual(fs.readdirSync(claim.moved).sort(), [
    'a.b.idx',
    'a.b.idx.1',
    'a.b.log',
    'a.b.log.1',
    'a.b.log.2',
    'owner',
  ]);
  assert.equal(fs.readFileSync(path.join(claim.moved, 'owner'), 'utf8'), 'admin\n');
  assert.equal(fs.statSync(claim.moved).mode & 0o777, 0o700);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['.previous', 'a.b.log.x', 'a.b.owner', 'a.bc.log', 'aXb.log']);
  assert.equal(owner(dir, 'a.b'), 'plugin:p\n');
});

test("a log from before owners were recorded is the admin's: kept for the admin, moved for a plugin", () => {
  const dir = logsDir();
  write(dir, 'old.log', 'old.idx');
  assert.deepEqual(claimLog(dir, 'old', 'admin'), none);
  assert.ok(fs.existsSync(path.join(dir, 'old.log')));
  fs.rmSync(path.join(dir, 'old.owner'));
  assert.notEqual(claimLog(dir, 'old', 'plugin:p').moved, null);
  assert.ok(!fs.existsSync(path.join(dir, 'old.log')));
});

test('segments that cannot be moved are deleted, never left for the new owner', () => {
  const dir = logsDir();
  claimLog(dir, 'web', 'plugin:one');
  write(dir, 'web.log', 'web.idx', 'web.log.1');
  // A file where the directory would go: mkdir fails.
  fs.writeFileSync(path.join(dir, PREVIOUS_DIR), '');
  const claim = claimLog(dir, 'web', 'plugin:two');
  assert.deepEqual([claim.moved, claim.removed], [null, true]);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['.previous', 'web.owner']);
  assert.equal(owner(dir, 'web'), 'plugin:two\n');
});
