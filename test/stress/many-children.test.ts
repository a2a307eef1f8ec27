// A service that forks a few hundred children (test/fixtures/fork-many.js: 100 shells with two sleeps
// each, SIGTERM ignored throughout, every fourth shell in a session of its own) is stopped completely:
// when `adi daemon stop` returns, not one process of it is left.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { FIXTURES, adi, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { killAll, markedProcesses, startDaemon } from './helpers.js';

const homes: TempHome[] = [];
after(async () => {
  for (const h of homes) killAll(markedProcesses(h.home).map((p) => p.pid));
  await Promise.all(homes.map((h) => h.cleanup()));
});

describe('a service with hundreds of children', () => {
  test('stop ends every one of them, including those in other sessions', async (t) => {
    const h = tempHome();
    homes.push(h);
    await startDaemon(h);
    const SHELLS = 100;
    const r = await adi(
      [
        'daemon',
        'start',
        'forker',
        '--stop-timeout',
        '1',
        '--',
        process.execPath,
        path.join(FIXTURES, 'fork-many.js'),
        String(SHELLS),
      ],
      h.env,
    );
    assert.equal(r.code, 0, r.stderr);
    const client = new DaemonClient({ env: h.env });
    try {
      await waitFor(
        async () => (await client.serviceLogs('forker', { lines: 20 })).some((l) => l.endsWith(`up ${SHELLS}`)),
        30_000,
        'the shells to be spawned',
      );
      // 1 node + 100 shells + 200 sleeps.
      await waitFor(() => markedProcesses(h.home).length >= 1 + 3 * SHELLS, 30_000, 'every sleep to run');
      const all = markedProcesses(h.home);
      const count = all.length;
      const leader = (await client.listServices()).find((s) => s.name === 'forker')?.pid;
      const outside = all.filter((p) => p.pgid !== leader).length;
      assert.ok(outside >= SHELLS / 4, `some run outside the service's process group: ${outside}`);
      const began = Date.now();
      const stop = await adi(['daemon', 'stop', 'forker'], h.env, { timeoutMs: 60_000 });
      const ms = Date.now() - began;
      assert.equal(stop.code, 0, stop.stderr);
      const left = markedProcesses(h.home);
      t.diagnostic(
        `stopped ${count} processes (${outside} outside the service's process group) in ${ms} ms; left: ${left.length}`,
      );
      assert.deepEqual(left, [], 'nothing of the service is left when stop returns');
      assert.equal((await client.listServices()).find((s) => s.name === 'forker')?.state, 'stopped');
    } finally {
      client.close();
    }
  });
});
