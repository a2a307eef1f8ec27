// Every request refused for want of identity or permission is in the audit log, anonymous ones
// included: a real daemon, an anonymous client and a plugin identity asking for what they may not do.
// (As root, test/privilege/limits.test.ts checks the same for an anonymous SudoRun on the plugin socket.)

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { AdiError } from '../../src/core/errors.js';
import { auditFile } from '../../src/executor/audit.js';
import { tempHome, type TempHome } from '../helpers/env.js';
import { daemonWithPlugin, readAudit, type AuditRecord } from './util.js';

let h: TempHome;
let admin: DaemonClient;
let token = '';

before(async () => {
  h = tempHome({ ADI_USER: 'adi-t12-none', ADI_ROOT_USER: 'adi-t12-none-root' });
  ({ admin, token } = await daemonWithPlugin(h));
});
after(async () => {
  admin.close();
  await h.cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(e instanceof AdiError, `expected an AdiError, got ${String(e)}`);
  return e.code;
}

function since(n: number): AuditRecord[] {
  return readAudit(auditFile(h.paths)).slice(n);
}

test('anonymous Run, SudoRun and admin requests are refused and audited', async () => {
  const n = readAudit(auditFile(h.paths)).length;
  const anon = new DaemonClient({ env: h.env, token: null });
  try {
    assert.equal(await codeOf(anon.sudoRun('/usr/bin/id', ['-u', '\n{"forged":1}'], 'anonymous try')), 'UNAUTHORIZED');
    assert.equal(await codeOf(anon.run('/usr/bin/id', ['-un'])), 'UNAUTHORIZED');
    assert.equal(await codeOf(anon.shutdown()), 'UNAUTHORIZED');
  } finally {
    anon.close();
  }
  const lines = since(n);
  assert.deepEqual(
    lines.map((l) => [l.identity, l.action, (l as unknown as { request: string }).request]),
    [
      ['anonymous', 'sudo_denied', 'SudoRun'],
      ['anonymous', 'run', 'Run'],
      ['anonymous', 'request_denied', 'Shutdown'],
    ],
  );
  assert.deepEqual(lines[0]?.argv, ['/usr/bin/id', '-u', '\n{"forged":1}']);
  assert.equal(lines[0]?.reason, 'anonymous try');
  assert.match(String(lines[0]?.result.denied), /SudoRun needs the plugin identity; this connection is anonymous/);
  assert.equal(lines[1]?.result.error, 'UNAUTHORIZED');
  assert.equal((await admin.ping()).pid > 0, true, 'the daemon carries on');
});

test("a plugin's refused admin requests are audited: Shutdown, Reload, an ad-hoc start, another's service", async () => {
  const n = readAudit(auditFile(h.paths)).length;
  const plugin = new DaemonClient({ env: h.env, token });
  try {
    assert.equal(await codeOf(plugin.shutdown()), 'PERMISSION_DENIED');
    assert.equal(await codeOf(plugin.reload()), 'PERMISSION_DENIED');
    assert.equal(
      await codeOf(plugin.startService('evil', { command: '/bin/sh', args: ['-c', 'id'] })),
      'PERMISSION_DENIED',
    );
    await admin.startService('admins', { command: '/bin/sleep', args: ['600'] });
    assert.equal(await codeOf(plugin.stopService('admins')), 'PERMISSION_DENIED');
  } finally {
    plugin.close();
  }
  const lines = since(n).map(
    (l) =>
      l as unknown as {
        identity: string;
        action: string;
        request: string;
        service?: string;
        result: { error: string };
      },
  );
  assert.deepEqual(
    lines.map((l) => [l.identity, l.action, l.request, l.service ?? null, l.result.error]),
    [
      ['plugin:tester', 'request_denied', 'Shutdown', null, 'PERMISSION_DENIED'],
      ['plugin:tester', 'request_denied', 'Reload', null, 'PERMISSION_DENIED'],
      ['plugin:tester', 'request_denied', 'StartService', 'evil', 'PERMISSION_DENIED'],
      ['plugin:tester', 'request_denied', 'StopService', 'admins', 'PERMISSION_DENIED'],
    ],
  );
  await admin.stopService('admins', true);
});

test('a flood of refused requests is bounded by the rate limit and summarised', async () => {
  const n = readAudit(auditFile(h.paths)).length;
  const anon = new DaemonClient({ env: h.env, token: null });
  try {
    const codes = await Promise.all(Array.from({ length: 300 }, () => codeOf(anon.sudoRun('/bin/x', ['y'], 'flood'))));
    assert.ok(codes.every((c) => c === 'UNAUTHORIZED'));
  } finally {
    anon.close();
  }
  // Written at once: at most the burst of this kind (and what its rate adds meanwhile); the rest are
  // counted, and the counts written as summary lines within about a second.
  const tally = (): { lines: AuditRecord[]; written: number; suppressed: number } => {
    const lines = since(n);
    return {
      lines,
      written: lines.filter((l) => l.action === 'sudo_denied').length,
      suppressed: lines
        .filter((l) => l.action === 'suppressed')
        .reduce((s, l) => s + (l as unknown as { count: number }).count, 0),
    };
  };
  let t = tally();
  const until = Date.now() + 10_000;
  while (t.written + t.suppressed < 300 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    t = tally();
  }
  const { lines, written, suppressed } = t;
  assert.ok(written < 300, `${written} entries written for 300 refusals`);
  assert.equal(written + suppressed, 300, 'every refusal is either written or counted');
  assert.match(
    String((lines.find((l) => l.action === 'suppressed') as unknown as { message: string }).message),
    /^\d+ similar entries suppressed$/,
  );
});
