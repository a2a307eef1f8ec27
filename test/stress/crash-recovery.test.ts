// Acceptance of crash recovery (src/services/recovery.ts) through the real CLI: kill -9 of the daemon
// with three services running (each with a grandchild), then `adi daemon start`. Every service process
// left alive must belong to a run the new daemon lists; none runs unsupervised.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { readStateFile } from '../../src/services/state-file.js';
import { readProcStatSync } from '../../src/system/proc.js';
import { FIXTURES, adi, alive, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { daemonLog, killAll, markedProcesses, markerOf, startDaemon } from './helpers.js';

const homes: TempHome[] = [];
after(async () => {
  for (const h of homes) killAll(markedProcesses(h.home).map((p) => p.pid));
  await Promise.all(homes.map((h) => h.cleanup()));
});

const node = JSON.stringify(process.execPath);
/** beta ignores SIGTERM: its leftovers take this long to end. alpha must not wait for them. */
const BETA_STOP_TIMEOUT = 6;
const fx = (name: string): string => JSON.stringify(path.join(FIXTURES, name));

/** alpha: auto_start, its main process dies of EPIPE once the daemon is gone (children stay).
 *  beta: started by hand, ignores SIGTERM (as do its child and double-forked orphan), stop_timeout 6 s.
 *  gamma: ad-hoc, with a child and a grandchild. */
function setUp(): TempHome {
  const h = tempHome();
  homes.push(h);
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  fs.writeFileSync(
    h.paths.servicesFile,
    [
      '[alpha]',
      `command = ${node}`,
      `args = [${fx('tree.js')}, "main", "50"]`,
      'auto_start = true',
      '',
      '[beta]',
      `command = ${node}`,
      `args = [${fx('ignore-term.js')}]`,
      `stop_timeout = ${BETA_STOP_TIMEOUT}`,
      '',
      '[idle]',
      'command = "/bin/sleep"',
      'args = ["1000"]',
      '',
    ].join('\n'),
  );
  return h;
}

async function listed(client: DaemonClient): Promise<Map<string, ServiceInfo>> {
  return new Map((await client.listServices()).map((s) => [s.name, s]));
}

describe('crash recovery', () => {
  test('kill -9 of the daemon: after `adi daemon start` every surviving service process is a listed run', async (t) => {
    const h = setUp();
    const first = await startDaemon(h);
    assert.equal((await adi(['daemon', 'start', 'beta'], h.env)).code, 0);
    const adhoc = await adi(
      ['daemon', 'start', 'gamma', '--', process.execPath, path.join(FIXTURES, 'tree.js'), 'main'],
      h.env,
    );
    assert.equal(adhoc.code, 0, adhoc.stderr);
    // Each fixture prints its pids as JSON once its whole tree is up:
    // alpha 3 (main, child, grandchild), beta 3 (main, child, orphan), gamma 3.
    const probe = new DaemonClient({ env: h.env });
    await waitFor(
      async () => {
        for (const name of ['alpha', 'beta', 'gamma']) {
          if (!(await probe.serviceLogs(name, { lines: 10_000 })).some((l) => l.includes('{"main":'))) return false;
        }
        return true;
      },
      30_000,
      'every service tree to be up',
    );
    probe.close();
    await waitFor(() => markedProcesses(h.home).length === 9, 15_000, 'nine service processes');
    const before = markedProcesses(h.home);
    const oldPids = new Set(before.map((p) => p.pid));
    // The state file already knows them all, starttime included.
    await waitFor(
      () => {
        const s = readStateFile(h.paths.stateFile);
        return (
          s !== null &&
          s.services.length === 3 &&
          s.services.every((e) => e.starttime !== null) &&
          s.wanted?.length === 3
        );
      },
      10_000,
      'the state file to record three runs',
    );

    process.kill(first, 'SIGKILL');
    await waitFor(() => !alive(first), 5000, 'the daemon to die');
    // The fault is real: without recovery these would live on unsupervised.
    await new Promise((r) => setTimeout(r, 300));
    const orphans = markedProcesses(h.home);
    t.diagnostic(`after kill -9: ${orphans.length} of ${before.length} service processes still alive`);
    assert.ok(orphans.length >= 6, `orphans: ${JSON.stringify(orphans)}`);

    const second = await startDaemon(h);
    const answered = Date.now();
    assert.notEqual(second, first);
    const client = new DaemonClient({ env: h.env });
    try {
      // auto_start alpha: back within a second of the daemon answering (asserted with slack for load;
      // a recovery that waited for beta's 6 s stop_timeout, or alpha's default 10 s, would fail it).
      await waitFor(
        async () => {
          const a = (await listed(client)).get('alpha');
          return a?.state === 'running' && a.pid !== null && !oldPids.has(a.pid);
        },
        10_000,
        'alpha to run again',
      );
      const alphaMs = Date.now() - answered;
      await waitFor(
        async () => {
          const m = await listed(client);
          return ['beta', 'gamma'].every((n) => m.get(n)?.state === 'running' && !oldPids.has(m.get(n)?.pid ?? -1));
        },
        30_000,
        'beta and gamma to run again',
      );
      const allMs = Date.now() - answered;
      t.diagnostic(
        `recovery: alpha (auto_start) running ${alphaMs} ms after the new daemon answered; beta (TERM-ignoring leftovers, stop_timeout ${BETA_STOP_TIMEOUT} s) and gamma ${allMs} ms`,
      );
      assert.ok(alphaMs < 4000, `alpha took ${alphaMs} ms`);
      assert.ok(allMs >= BETA_STOP_TIMEOUT * 1000 - 500, 'beta started again only after its old processes were gone');

      const services = await listed(client);
      assert.equal(services.get('gamma')?.source, 'adhoc', 'the ad-hoc service is back with its definition');
      assert.equal(services.get('idle')?.state, 'stopped', 'what did not run before does not run now');

      await waitFor(() => [...oldPids].every((pid) => !alive(pid)), 10_000, 'every old process to be gone');
      // The new runs' own children: each fixture prints its pids once its whole tree is up, beta's
      // only once its middle process has forked the orphan and exited. Until then a count of nine
      // can be met by beta's short-lived middle process instead of its orphan.
      await waitFor(
        async () => {
          for (const name of ['alpha', 'beta', 'gamma']) {
            const trees = (await client.serviceLogs(name, { lines: 10_000 })).filter((l) => l.includes('{"main":'));
            if (trees.length < 2) return false;
          }
          return true;
        },
        15_000,
        'every new service tree to be up',
      );
      await waitFor(() => markedProcesses(h.home).length === 9, 10_000, 'three processes per service again');
      // Now nothing may run that the new daemon does not know.
      const runMarkers = new Map<string, string>();
      for (const [name, info] of await listed(client)) {
        if (info.pid === null) continue;
        const m = markerOf(info.pid);
        assert.ok(m !== null, `listed pid ${info.pid} of ${name} carries a marker`);
        runMarkers.set(m, name);
      }
      const now = markedProcesses(h.home);
      for (const p of now) {
        assert.ok(!oldPids.has(p.pid), `old pid ${p.pid} is gone`);
        assert.equal(
          runMarkers.get(p.marker),
          p.name,
          `pid ${p.pid} (${p.name}) belongs to a run the new daemon lists`,
        );
      }
      assert.equal(now.length, 9, `three processes per service again: ${JSON.stringify(now)}`);
      const log = daemonLog(h);
      assert.match(log, /recovery: the previous daemon \(pid \d+\) did not shut down cleanly/);
      assert.match(log, /recovery: service beta: the previous daemon's processes are gone \(SIGKILL was needed\)/);
    } finally {
      client.close();
    }
  });

  test('a clean stop ends everything: the next start runs only the auto_start services (ad-hoc ones vanish)', async () => {
    const h = setUp();
    await startDaemon(h);
    assert.equal((await adi(['daemon', 'start', 'beta'], h.env)).code, 0);
    assert.equal((await adi(['daemon', 'start', 'gamma', '--', '/bin/sleep', '1000'], h.env)).code, 0);
    assert.equal((await adi(['daemon', 'stop'], h.env, { timeoutMs: 60_000 })).code, 0);
    assert.deepEqual(markedProcesses(h.home), [], 'a clean stop leaves no service process');
    await startDaemon(h);
    const client = new DaemonClient({ env: h.env });
    try {
      await waitFor(async () => (await listed(client)).get('alpha')?.state === 'running', 10_000, 'alpha');
      const m = await listed(client);
      assert.equal(m.get('beta')?.state, 'stopped');
      assert.equal(m.get('gamma'), undefined);
    } finally {
      client.close();
    }
  });

  test('a reused pid in the state file is never touched', async () => {
    const h = setUp();
    fs.writeFileSync(h.paths.servicesFile, '');
    // A process that is not ours to stop, recorded as if it were a service's (its start time differs).
    const { spawn } = await import('node:child_process');
    const stranger = spawn('/bin/sleep', ['1000'], { stdio: 'ignore', detached: true });
    try {
      await waitFor(() => stranger.pid !== undefined && alive(stranger.pid), 5000, 'the stranger');
      const start = readProcStatSync(stranger.pid as number)?.starttime ?? 0;
      fs.mkdirSync(h.paths.dataDir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(
        h.paths.stateFile,
        JSON.stringify({
          version: 1,
          daemon_pid: 999_999,
          updated_at: Date.now(),
          services: [
            {
              name: 'web',
              pid: stranger.pid,
              pgid: stranger.pid,
              marker: 'ab'.repeat(16),
              starttime: start - 7,
              started_at: 0,
              stop_timeout: 0,
            },
          ],
          wanted: [],
        }),
        { mode: 0o600 },
      );
      await startDaemon(h);
      // Recorded with stop_timeout 0: a recovery that took it for the service's would SIGKILL it at once.
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(alive(stranger.pid as number), 'the stranger still runs');
      assert.match(daemonLog(h), /recovery: pid \d+ recorded for service web is now another process/);
    } finally {
      stranger.kill('SIGKILL');
    }
  });
});
