// The per-identity budgets of Run and SudoRun (src/executor/budget.ts) through the executor itself:
// what an identity holds while a command runs, while its answer waits to be sent, and after.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { AdiError } from '../../src/core/errors.js';
import { MemoryAudit } from '../../src/executor/audit.js';
import { Executor } from '../../src/executor/executor.js';
import type { Run } from '../../src/protocol/types.js';
import { ADMIN, type Identity } from '../../src/core/identity.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { tempDir, testPaths } from './util.js';

const plugin: Identity = { kind: 'plugin', plugin: 'p', label: 'plugin:p' };
const run = (script: string): Run => ({ type: 'Run', command: '/bin/sh', args: ['-c', script] });

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function executor(limits: { maxCommands?: number; outputBudgetBytes?: number }): { ex: Executor; audit: MemoryAudit } {
  const root = tempDir();
  dirs.push(root);
  const audit = new MemoryAudit();
  const ex = new Executor({
    paths: testPaths(root, 'adi-nosuch-test', 'adi-nosuch-test-root'),
    log: new MemoryLogger(),
    audit,
    limits,
    separation: { active: false, reason: 'test' },
  });
  return { ex, audit };
}

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  return e instanceof AdiError ? e.code : `no error (${String(e)})`;
}

void test('output stays counted until the caller releases it; without a hold it is released on return', async () => {
  const { ex } = executor({ outputBudgetBytes: 100_000 });
  const held: (() => void)[] = [];
  const r = await ex.run(plugin, run('head -c 60000 /dev/zero'), { holdOutput: (fn) => held.push(fn) });
  assert.equal(held.length, 1);
  assert.equal(r.stdout.length, 60_000);
  assert.deepEqual(ex.usage(plugin), { commands: 0, bytes: 60_000 });
  // 60,000 held: another 60,000 do not fit, and that command is killed.
  const e = await ex.run(plugin, run('head -c 60000 /dev/zero')).then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(
    e instanceof AdiError &&
      e.code === 'OUTPUT_TOO_LARGE' &&
      /plugin:p's commands passed the 100000 bytes/.test(e.message),
    String(e),
  );
  assert.deepEqual(ex.usage(plugin), { commands: 0, bytes: 60_000 }, 'the failed command gave its bytes back at once');
  // Another identity has its own budget.
  assert.equal((await ex.run(ADMIN, run('head -c 60000 /dev/zero'))).stdout.length, 60_000);
  assert.deepEqual(ex.usage(ADMIN), { commands: 0, bytes: 0 });
  for (const fn of [...held, ...held]) fn();
  assert.deepEqual(ex.usage(plugin), { commands: 0, bytes: 0 }, 'released once, however often called');
  assert.equal((await ex.run(plugin, run('head -c 60000 /dev/zero'))).stdout.length, 60_000);
});

void test('at the command maximum: TOO_MANY_COMMANDS at once, audited; the slot frees when a command ends', async () => {
  const { ex, audit } = executor({ maxCommands: 2 });
  const gate = tempDir();
  dirs.push(gate);
  const wait = run(`while [ ! -e ${gate}/go ]; do sleep 0.02; done`);
  const first = ex.run(plugin, wait);
  // A SudoRun denied (no separation) takes no slot.
  assert.equal(
    (await ex.sudoRun(plugin, { type: 'SudoRun', command: '/bin/true', args: [], reason: 'r' }, [])).type,
    'SudoDenied',
  );
  const second = ex.run(plugin, wait);
  assert.equal(await code(ex.run(plugin, run('true'))), 'TOO_MANY_COMMANDS');
  assert.deepEqual(ex.usage(plugin).commands, 2);
  assert.ok(
    audit.entries.some(
      (e) => e.identity === 'plugin:p' && 'error' in e.result && e.result.error === 'TOO_MANY_COMMANDS',
    ),
  );
  fs.writeFileSync(`${gate}/go`, '');
  await Promise.all([first, second]);
  assert.deepEqual(ex.usage(plugin), { commands: 0, bytes: 0 });
  assert.equal((await ex.run(plugin, run('true'))).exit_code, 0);
});
