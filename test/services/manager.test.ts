// ServiceManager with real processes: start, crash and restart, restart limit, stop of a SIGTERM
// ignorer with (double-forked) grandchildren, spawn failures, environment, state file.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { afterEach, describe, it } from 'node:test';
import { AdiError } from '../../src/core/errors.js';
import { readStateFile } from '../../src/services/state-file.js';
import { readProcStatSync } from '../../src/system/proc.js';
import {
  isAlive,
  makeEnv,
  nodeService,
  shService,
  taggedPids,
  texts,
  waitState,
  type TestEnv,
  adhoc,
} from './helpers.js';
import { waitFor } from '../helpers/env.js';

let env: TestEnv | null = null;
function setup(): TestEnv {
  env = makeEnv();
  return env;
}
void afterEach(async () => {
  await env?.cleanup();
  env = null;
});

void describe('ServiceManager processes', () => {
  void it('runs /bin/sleep and restarts it at once after kill -9', async () => {
    const { manager } = setup();
    await manager.init();
    const info = await manager.start('sl', adhoc({ command: '/bin/sleep', args: ['1000'] }));
    assert.equal(info.state, 'running');
    assert.equal(info.source, 'adhoc');
    assert.equal(info.restarts, 0);
    assert.ok(typeof info.pid === 'number' && info.pid > 0);
    assert.equal(info.uptime_secs, 0);
    assert.equal(info.cpu_percent, null);
    assert.equal(info.memory_bytes, null);
    const first = info.pid;

    process.kill(first, 'SIGKILL');
    const after = await waitFor(
      () => {
        const i = manager.get('sl');
        return i?.state === 'running' && i.pid !== first ? i : undefined;
      },
      10_000,
      'a new sleep process',
    );
    assert.equal(after.restarts, 1);
    assert.equal(after.exit_signal, 'SIGKILL', 'how the previous run ended stays visible');
    assert.ok(isAlive(after.pid as number));
    assert.match(after.last_error ?? '', /killed by SIGKILL/);
    assert.deepEqual(
      manager.list().map((s) => s.name),
      ['sl'],
    );
  });

  void it('gives up on a crash loop after max_restarts and stays failed', async () => {
    const { manager, log, clock } = setup();
    const started = Date.now();
    // A crash at once; in sh, as each of its four runs would start a node process otherwise.
    await manager.start('crashy', adhoc({ command: '/bin/sh', args: ['-c', 'exit 7'], max_restarts: 3 }));
    const info = await waitState(manager, 'crashy', 'failed');
    assert.equal(info.restarts, 3);
    assert.equal(info.exit_code, 7);
    assert.equal(info.exit_signal, null);
    assert.equal(info.pid, null);
    assert.match(info.last_error ?? '', /exited with code 7; gave up after 3 restarts in 60s/);
    // Backoff 0 + 100 + 200 ms: seconds, not minutes (generous bound).
    assert.ok(Date.now() - started < 8000);
    // Stays failed: once the last run's sweep is over no timer is left that could restart it.
    await waitFor(() => clock.pending() === 0 || undefined, 10_000, 'no pending timer');
    assert.equal(manager.get('crashy')?.state, 'failed');
    assert.equal(manager.get('crashy')?.restarts, 3);
    assert.ok(log.lines.some((l) => l.includes('crashy failed')));
    const lines = texts(await manager.tail('crashy', 100), 'sys');
    assert.ok(
      lines.some((l) => l.startsWith('gave up')),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith('restarting in 100ms')),
      lines.join('\n'),
    );

    // A user start resets the count and tries again.
    const again = await manager.start('crashy');
    assert.equal(again.restarts, 0);
    assert.equal(again.last_error, null);
    await manager.stop('crashy', true);
  });

  void it('passes through the backoff state between quick crashes', async () => {
    const { manager } = setup();
    await manager.start('bo', adhoc({ command: '/bin/sh', args: ['-c', 'sleep 0.05; exit 1'], max_restarts: 4 }));
    await waitState(manager, 'bo', 'backoff');
    const failed = await waitState(manager, 'bo', 'failed');
    assert.equal(failed.restarts, 4);
    assert.match(failed.last_error ?? '', /exited with code 1; gave up after 4 restarts/);
  });

  void it('restarts a clean exit (code 0) too, and with restart_on_failure=false stops instead', async () => {
    const { manager } = setup();
    await manager.start('zero', adhoc({ command: '/bin/sh', args: ['-c', 'exit 0'], max_restarts: 1 }));
    const info = await waitState(manager, 'zero', 'failed');
    assert.equal(info.restarts, 1);
    assert.match(info.last_error ?? '', /exited with code 0; gave up after 1 restarts/);

    await manager.start('once', adhoc({ command: '/bin/sh', args: ['-c', 'exit 0'], restart_on_failure: false }));
    const once = await waitState(manager, 'once', 'stopped');
    assert.equal(once.restarts, 0);
    assert.equal(once.exit_code, 0);
    assert.equal(once.last_error, null);

    await manager.start('bad', adhoc({ command: '/bin/sh', args: ['-c', 'exit 5'], restart_on_failure: false }));
    const bad = await waitState(manager, 'bad', 'failed');
    assert.equal(bad.restarts, 0);
    assert.equal(bad.last_error, 'exited with code 5');
  });

  void it('a stop during backoff cancels the pending restart for good', async () => {
    const { manager, clock } = setup();
    await manager.start('bk', adhoc({ command: '/bin/sh', args: ['-c', 'exit 1'], max_restarts: 50 }));
    await waitState(manager, 'bk', 'backoff');
    const restarts = manager.get('bk')?.restarts;
    const stopped = await manager.stop('bk', false);
    assert.equal(stopped.state, 'stopped');
    // The backoff timer went with the stop: nothing is left that could restart it.
    await waitFor(() => clock.pending() === 0 || undefined, 10_000, 'no pending timer');
    assert.equal(manager.get('bk')?.state, 'stopped');
    assert.equal(manager.get('bk')?.restarts, restarts);
  });

  void it('stops a SIGTERM ignorer with grandchildren (one double-forked) within stop_timeout, leaving nothing', async () => {
    const { manager, tag, clock } = setup();
    await manager.start('stubborn', adhoc(shService('ignore-term.sh', { stop_timeout: 2 })));
    const pidsLine = await waitFor(
      async () => texts(await manager.tail('stubborn', 10), 'out').find((l) => l.startsWith('{')),
      10_000,
      'the fixture to print its pids',
    );
    const pids = JSON.parse(pidsLine) as { main: number; child: number; orphan: number };
    for (const pid of Object.values(pids)) assert.ok(isAlive(pid), `pid ${pid} should run`);
    // The orphan left the group: only the marker can find it.
    assert.notEqual(readProcStatSync(pids.orphan)?.pgid, pids.main);

    const t0 = Date.now();
    const info = await manager.stop('stubborn', false);
    const took = Date.now() - t0;
    assert.equal(info.state, 'stopped');
    assert.equal(info.exit_signal, 'SIGKILL');
    assert.ok(took >= 1900, `waited the grace period (${took} ms)`);
    assert.ok(took < 8000, `stop took ${took} ms`);
    for (const pid of Object.values(pids)) assert.equal(isAlive(pid), false, `pid ${pid} must be gone`);
    assert.deepEqual(taggedPids(tag), []);
    // A user stop is never followed by a restart: no timer is left that could start it.
    await waitFor(() => clock.pending() === 0 || undefined, 10_000, 'no pending timer');
    assert.equal(manager.get('stubborn')?.state, 'stopped');
    assert.equal(manager.get('stubborn')?.restarts, 0);
  });

  void it('force-stops at once with SIGKILL and cuts a graceful stop short', async () => {
    const { manager, tag } = setup();
    await manager.start('f', adhoc(shService('ignore-term.sh', { stop_timeout: 30 })));
    await waitFor(async () => texts(await manager.tail('f', 10), 'out').find((l) => l.startsWith('{')), 10_000, 'pids');
    const t0 = Date.now();
    const graceful = manager.stop('f', false);
    assert.equal((await waitState(manager, 'f', 'stopping')).state, 'stopping');
    const forced = await manager.stop('f', true);
    assert.equal(forced.state, 'stopped');
    assert.equal((await graceful).state, 'stopped');
    assert.ok(Date.now() - t0 < 5000, 'the forced stop did not wait 30 s');
    assert.deepEqual(taggedPids(tag), []);
  });

  void it('kills what a crashed service left behind, without delaying its restart', async () => {
    const { manager, tag } = setup();
    await manager.start('leaky', adhoc(shService('ignore-term.sh', { stop_timeout: 0.2 })));
    const first = JSON.parse(
      await waitFor(
        async () => texts(await manager.tail('leaky', 10), 'out').find((l) => l.startsWith('{')),
        10_000,
        'pids',
      ),
    ) as Record<string, number>;
    process.kill(first.main as number, 'SIGKILL');
    await waitFor(
      () => !isAlive(first.child as number) && !isAlive(first.orphan as number),
      10_000,
      'the leftovers to be ended',
    );
    const info = await waitState(manager, 'leaky', 'running');
    assert.equal(info.restarts, 1);
    await manager.stop('leaky', true);
    assert.deepEqual(taggedPids(tag), []);
  });

  void it('reports spawn failures: missing command, not executable, missing cwd', async () => {
    const { manager, dir } = setup();
    await assert.rejects(manager.start('nope', adhoc({ command: '/no/such/program' })), (err: AdiError) => {
      assert.equal(err.code, 'SPAWN_FAILED');
      assert.match(err.message, /\/no\/such\/program/);
      assert.match(err.message, /ENOENT/);
      return true;
    });
    const info = manager.get('nope');
    assert.equal(info?.state, 'failed');
    assert.match(info?.last_error ?? '', /cannot start "\/no\/such\/program": ENOENT/);

    const plain = `${dir}/plain.txt`;
    fs.writeFileSync(plain, 'not a program', { mode: 0o644 });
    if (process.getuid?.() !== 0) {
      await assert.rejects(
        manager.start('noexec', adhoc({ command: plain })),
        (err: AdiError) => err.code === 'SPAWN_FAILED' && /EACCES/.test(err.message),
      );
    }
    await assert.rejects(
      manager.start('nocwd', adhoc({ command: '/bin/sleep', args: ['5'], working_dir: `${dir}/missing` })),
      (err: AdiError) => {
        assert.equal(err.code, 'SPAWN_FAILED');
        assert.match(err.message, /working directory .*missing: ENOENT/);
        return true;
      },
    );
  });

  void it('gives children the base env, the service env, the markers and the right cwd', async () => {
    const { manager, dir, tag } = setup();
    await manager.start(
      'envy',
      adhoc(
        nodeService('print-env.js', ['ADI_TEST_TAG', 'FOO', 'ADI_SERVICE_NAME', 'ADI_SERVICE_ID', 'ADI_READY_FD'], {
          env: { FOO: 'bar', ADI_SERVICE_ID: 'forged' },
        }),
      ),
    );
    const line = await waitFor(
      async () => texts(await manager.tail('envy', 10), 'out').find((l) => l.startsWith('{')),
      10_000,
      'env output',
    );
    const got = JSON.parse(line) as { cwd: string; env: Record<string, string | null> };
    assert.equal(got.cwd, dir, 'default cwd is the home directory');
    assert.equal(got.env.ADI_TEST_TAG, tag);
    assert.equal(got.env.FOO, 'bar');
    assert.equal(got.env.ADI_SERVICE_NAME, 'envy');
    assert.match(got.env.ADI_SERVICE_ID ?? '', /^[0-9a-f]{32}$/, 'the marker cannot be forged by the service env');
    assert.equal(got.env.ADI_READY_FD, null);

    fs.mkdirSync(`${dir}/work`);
    await manager.start('wd', adhoc(nodeService('print-env.js', [], { working_dir: `${dir}/work` })));
    const wdLine = await waitFor(
      async () => texts(await manager.tail('wd', 10), 'out').find((l) => l.startsWith('{')),
      10_000,
      'cwd output',
    );
    assert.equal((JSON.parse(wdLine) as { cwd: string }).cwd, `${dir}/work`);
  });

  void it('keeps the state file current: 0600, pid, pgid, marker, starttime', async () => {
    const { manager, paths } = setup();
    const info = await manager.start('st', adhoc({ command: '/bin/sleep', args: ['1000'] }));
    const state = await waitFor(
      () => {
        const s = readStateFile(paths.stateFile);
        return s?.services.find((e) => e.name === 'st' && e.starttime !== null) ? s : undefined;
      },
      10_000,
      'the state file to list st',
    );
    const entry = state.services.find((e) => e.name === 'st');
    assert.ok(entry);
    assert.equal(entry.pid, info.pid);
    assert.equal(entry.pgid, info.pid);
    assert.match(entry.marker, /^[0-9a-f]{32}$/);
    assert.equal(entry.starttime, readProcStatSync(entry.pid)?.starttime);
    assert.equal(fs.statSync(paths.stateFile).mode & 0o777, 0o600);
    const environ = fs.readFileSync(`/proc/${entry.pid}/environ`, 'latin1');
    assert.ok(environ.includes(`ADI_SERVICE_ID=${entry.marker}\0`));

    await manager.stop('st', false);
    await waitFor(() => readStateFile(paths.stateFile)?.services.length === 0, 10_000, 'the state file to be empty');
  });

  void it('the state file follows every change (crash restart, reload, stop) and a clean stop leaves a whole, empty snapshot', async () => {
    const { manager, paths, writeServices } = setup();
    writeServices(
      '[filed]\ncommand = "/bin/sleep"\nargs = ["1000"]\nauto_start = true\n[drop]\ncommand = "/bin/sleep"\nargs = ["1000"]\nauto_start = true\n',
    );
    await manager.init();
    await manager.start('temp', adhoc({ command: '/bin/sleep', args: ['1000'] }));
    // What the file says matches what runs: one entry per live run (start time known), wanted by name.
    const recorded = (names: string[]) =>
      waitFor(
        () => {
          const s = readStateFile(paths.stateFile);
          const pids = names.map((n) => manager.get(n)?.pid).sort();
          const ok =
            s !== null &&
            s.services.every((e) => e.starttime !== null) &&
            JSON.stringify(s.services.map((e) => e.pid).sort()) === JSON.stringify(pids) &&
            JSON.stringify(s.wanted?.map((w) => w.name).sort()) === JSON.stringify([...names].sort());
          return ok ? s : undefined;
        },
        10_000,
        `the state file to record ${names.join(', ')}`,
      );
    await recorded(['drop', 'filed', 'temp']);

    const old = manager.get('temp')?.pid as number;
    process.kill(old, 'SIGKILL');
    await waitFor(
      () => manager.get('temp')?.state === 'running' && manager.get('temp')?.pid !== old,
      10_000,
      'temp to be restarted',
    );
    await recorded(['drop', 'filed', 'temp']);

    writeServices('[filed]\ncommand = "/bin/sleep"\nargs = ["1000"]\nauto_start = true\n');
    await manager.reload();
    await recorded(['filed', 'temp']);
    await manager.stop('temp', false);
    await recorded(['filed']);

    await manager.stopAll();
    const snapshot = JSON.parse(fs.readFileSync(paths.stateFile, 'utf8')) as {
      services: unknown[];
      wanted: unknown[];
      journal: string;
    };
    assert.deepEqual([snapshot.services, snapshot.wanted], [[], []]);
    assert.equal(fs.readFileSync(`${paths.stateFile}.journal`, 'utf8'), `{"journal":"${snapshot.journal}"}\n`);
  });

  void it('start of a running service is a no-op; restart resets the count; errors have codes', async () => {
    const { manager } = setup();
    const a = await manager.start('r', adhoc({ command: '/bin/sleep', args: ['1000'] }));
    const b = await manager.start('r', adhoc({ command: '/bin/sleep', args: ['1000'] }));
    assert.equal(b.pid, a.pid);
    await assert.rejects(
      manager.start('r', adhoc({ command: '/bin/sleep', args: ['999'] })),
      (e: AdiError) => e.code === 'SERVICE_EXISTS',
    );
    process.kill(a.pid as number, 'SIGKILL');
    await waitFor(
      () => manager.get('r')?.restarts === 1 && manager.get('r')?.state === 'running',
      10_000,
      'an automatic restart',
    );
    const c = await manager.restart('r');
    assert.equal(c.restarts, 0);
    assert.equal(c.state, 'running');
    assert.notEqual(c.pid, a.pid);

    await assert.rejects(
      manager.stop('ghost', false),
      (e: AdiError) => e.code === 'SERVICE_NOT_FOUND' && /adi daemon services/.test(e.message),
    );
    await assert.rejects(manager.start('ghost'), (e: AdiError) => e.code === 'SERVICE_NOT_FOUND');
    await assert.rejects(manager.restart('ghost'), (e: AdiError) => e.code === 'SERVICE_NOT_FOUND');
    await assert.rejects(manager.tail('ghost', 5), (e: AdiError) => e.code === 'SERVICE_NOT_FOUND');
    assert.throws(
      () => manager.follow('ghost', () => {}),
      (e: AdiError) => e.code === 'SERVICE_NOT_FOUND',
    );
    await assert.rejects(
      manager.start('Bad Name', adhoc({ command: '/bin/true' })),
      (e: AdiError) => e.code === 'BAD_SERVICE_NAME',
    );
    // A bad config never reaches the manager: parseRequest refuses it (test/protocol/config-limits.test.ts).

    // A stopped ad-hoc service is replaced by a new definition.
    await manager.stop('r', false);
    const d = await manager.start('r', adhoc({ command: '/bin/sleep', args: ['999'] }));
    assert.equal(d.state, 'running');
  });

  void it('stopAll stops everything in parallel and refuses new starts', async () => {
    const { manager, tag } = setup();
    await Promise.all([
      manager.start('a', adhoc(shService('ignore-term.sh', { stop_timeout: 1 }))),
      manager.start('b', adhoc(shService('ignore-term.sh', { stop_timeout: 1 }))),
      manager.start('c', adhoc({ command: '/bin/sleep', args: ['1000'] })),
    ]);
    await waitFor(
      async () => texts(await manager.tail('b', 10), 'out').some((l) => l.startsWith('{')),
      10_000,
      'b to fork',
    );
    const t0 = Date.now();
    await manager.stopAll();
    assert.ok(Date.now() - t0 < 6000, 'in parallel, not 1 s after 1 s');
    assert.deepEqual(taggedPids(tag), []);
    assert.ok(manager.list().every((s) => s.state === 'stopped'));
    await assert.rejects(manager.start('a'), (e: AdiError) => e.code === 'SHUTTING_DOWN');
  });
});
