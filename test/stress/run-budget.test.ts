// One identity cannot grow the daemon with command output: 64 concurrent Runs of 16 MB each from one
// plugin connection stay within the identity's command and output budgets (src/executor/budget.ts),
// the daemon's peak RSS grows by less than 200 MB, and other clients are answered meanwhile. Output
// stays counted until its answer is sent, so a plugin that does not read cannot park more than its
// budget in the daemon, and closing its connection gives the budget back.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { AdiError } from '../../src/core/errors.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { daemonPids, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { daemonWithPlugin } from '../executor/util.js';

const homes: TempHome[] = [];
after(async () => {
  for (const h of homes) await h.cleanup();
});

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

async function outcome(p: Promise<{ stdout: Uint8Array }>): Promise<string> {
  try {
    const r = await p;
    return `ok:${r.stdout.length}`;
  } catch (err) {
    return err instanceof AdiError ? err.code : String(err);
  }
}

test('64 concurrent 16 MB Runs from one plugin connection: RSS growth under 200 MB, others answered', async () => {
  const h = tempHome({ ADI_USER: 'adi-t12-none', ADI_ROOT_USER: 'adi-t12-none-root' });
  homes.push(h);
  const { admin, token } = await daemonWithPlugin(h);
  const [pid] = daemonPids(h.home);
  assert.ok(pid !== undefined);
  const plugin = new DaemonClient({ env: h.env, token, timeoutMs: 120_000 });
  const other = new DaemonClient({ env: h.env, token: null, timeoutMs: 10_000 });
  try {
    await plugin.ping();
    await other.ping();
    const before = statusKb(pid, 'VmHWM');
    let done = false;
    const runs = Promise.all(
      Array.from({ length: 64 }, () => outcome(plugin.run('/bin/sh', ['-c', 'head -c 16000000 /dev/zero; sleep 8']))),
    ).finally(() => {
      done = true;
    });
    // Another client is answered while they run (each Ping bounded by its client's 10 s timeout).
    let pings = 0;
    while (!done) {
      await other.ping();
      await admin.listServices();
      pings++;
      await new Promise((r) => setTimeout(r, 100));
    }
    const results = await runs;
    const peakGrowthKb = statusKb(pid, 'VmHWM') - before;
    const tally: Record<string, number> = {};
    for (const r of results) tally[r] = (tally[r] ?? 0) + 1;
    console.log(
      `# outcomes ${JSON.stringify(tally)}; peak RSS growth ${Math.round(peakGrowthKb / 1024)} MiB; ${pings} pings answered meanwhile`,
    );
    assert.ok(peakGrowthKb < 200 * 1024, `peak RSS grew by ${peakGrowthKb} KiB`);
    assert.ok(pings > 0);
    // At most 16 ran at once (the default); the others were refused at once with a typed error.
    assert.ok((tally.TOO_MANY_COMMANDS ?? 0) >= 48, JSON.stringify(tally));
    assert.ok(
      results.every((r) => r === 'ok:16000000' || r === 'OUTPUT_TOO_LARGE' || r === 'TOO_MANY_COMMANDS'),
      JSON.stringify(tally),
    );
    assert.ok((tally['ok:16000000'] ?? 0) >= 1, 'at least one command got its whole output');
    // And the identity is whole again afterwards.
    assert.equal((await plugin.run('/bin/sh', ['-c', 'head -c 16000000 /dev/zero'])).stdout.length, 16_000_000);
  } finally {
    plugin.close();
    other.close();
    admin.close();
  }
});

test('answers not yet read keep their bytes counted; a closed connection gives them back', async () => {
  const budget = 4 * 1024 * 1024;
  const h = tempHome({
    ADI_USER: 'adi-t12-none',
    ADI_ROOT_USER: 'adi-t12-none-root',
    ADI_DAEMON_OUTPUT_BUDGET: String(budget),
  });
  homes.push(h);
  const { admin, token } = await daemonWithPlugin(h);
  const plugin = new DaemonClient({ env: h.env, token, timeoutMs: 60_000 });
  const mb = (n: number): string[] => ['-c', `head -c ${n * 1024 * 1024} /dev/zero`];
  const peer = await RawPeer.connect(h.paths.socket);
  try {
    peer.send({ id: 1, type: 'Hello', protocol: PROTOCOL_VERSION, client: 'stuck', token });
    await peer.waitFrame((f) => f.id === 1);
    // This peer stops reading; two 1.5 MiB answers cannot leave the daemon (a socket buffer holds far less).
    peer.socket.pause();
    const mark = h.home + '/done';
    peer.send({ id: 2, type: 'Run', command: '/bin/sh', args: ['-c', `head -c 1572864 /dev/zero; echo > ${mark}2`] });
    peer.send({ id: 3, type: 'Run', command: '/bin/sh', args: ['-c', `head -c 1572864 /dev/zero; echo > ${mark}3`] });
    await waitFor(() => fs.existsSync(`${mark}2`) && fs.existsSync(`${mark}3`), 20_000, 'both commands to finish');
    // Their 3 MiB stay counted while unsent: 2 MiB more do not fit, on any connection of this identity.
    await waitFor(
      async () => (await outcome(plugin.run('/bin/sh', mb(2)))) === 'OUTPUT_TOO_LARGE',
      20_000,
      'the budget to be held by the unsent answers',
    );
    const e = await plugin.run('/bin/sh', mb(2)).then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(
      e instanceof AdiError &&
        e.code === 'OUTPUT_TOO_LARGE' &&
        /passed the 4194304 bytes one identity may hold/.test(e.message),
      String(e),
    );
    // Small output still fits in what is left.
    assert.equal((await plugin.run('/bin/echo', ['hi'])).stdout.length, 3);
    // The stuck client goes: its answers are dropped and their bytes come back.
    peer.close();
    await waitFor(
      async () => (await outcome(plugin.run('/bin/sh', mb(2)))) === `ok:${2 * 1024 * 1024}`,
      20_000,
      'the budget to come back',
    );
  } finally {
    peer.close();
    plugin.close();
    admin.close();
  }
});

test('past the per-identity command maximum: TOO_MANY_COMMANDS, audited; other identities unaffected', async () => {
  const h = tempHome({ ADI_USER: 'adi-t12-none', ADI_ROOT_USER: 'adi-t12-none-root', ADI_DAEMON_MAX_COMMANDS: '3' });
  homes.push(h);
  const { admin, token } = await daemonWithPlugin(h);
  const a = new DaemonClient({ env: h.env, token, timeoutMs: 60_000 });
  const b = new DaemonClient({ env: h.env, token, timeoutMs: 60_000 });
  try {
    const gate = h.home + '/gate';
    const waiting = [a, a, b].map((c) =>
      outcome(c.run('/bin/sh', ['-c', `while [ ! -e ${gate} ]; do sleep 0.05; done`])),
    );
    // The three are running (on two connections); a fourth from either connection is refused.
    await waitFor(
      async () => (await outcome(b.run('/bin/true'))) === 'TOO_MANY_COMMANDS',
      20_000,
      'the maximum to be reached',
    );
    const e = await a.run('/bin/true').then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(
      e instanceof AdiError &&
        e.code === 'TOO_MANY_COMMANDS' &&
        /plugin:tester already has 3 commands running/.test(e.message),
      String(e),
    );
    // The admin is another identity with its own allowance.
    assert.equal((await admin.run('/bin/true')).exit_code, 0);
    fs.writeFileSync(gate, '');
    assert.deepEqual(await Promise.all(waiting), ['ok:0', 'ok:0', 'ok:0']);
    assert.equal((await a.run('/bin/true')).exit_code, 0, 'the slots are free again');
    const { readAudit } = await import('../executor/util.js');
    const { auditFile } = await import('../../src/executor/audit.js');
    assert.ok(
      readAudit(auditFile(h.paths)).some(
        (l) => l.identity === 'plugin:tester' && l.result.error === 'TOO_MANY_COMMANDS',
      ),
    );
  } finally {
    a.close();
    b.close();
    admin.close();
  }
});
