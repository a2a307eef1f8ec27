// A Service's state machine driven through a fake Spawner and a fake Clock: restart backoff, the
// max_restarts window, stops in each state, SIGKILL after stop_timeout, readiness. No process is
// started and no real time is waited for (the real-process edges are in manager.test.ts).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { AdiError } from '../../src/core/errors.js';
import { MemoryLogger } from '../../src/core/logger.js';
import type { ServiceConfig, ServiceState } from '../../src/protocol/types.js';
import { validateServiceConfig } from '../../src/protocol/config-schema.js';
import { next } from '../../src/services/lifecycle.js';
import { Service } from '../../src/services/service.js';
import { FakeClock, FakeSpawner } from './fakes.js';

interface Rig {
  service: Service;
  spawner: FakeSpawner;
  clock: FakeClock;
  log: MemoryLogger;
  dir: string;
}

const rigs: Rig[] = [];

function rig(extra: Partial<ServiceConfig> = {}): Rig {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-machine-'));
  const result = validateServiceConfig({ command: '/bin/fake', ...extra });
  if (result.config === null) throw new Error(JSON.stringify(result.errors));
  const spawner = new FakeSpawner();
  const clock = new FakeClock();
  const log = new MemoryLogger();
  const service = new Service(
    { name: 'svc', source: 'adhoc', config: result.config, auto_start: false, origin: 'StartService' },
    null,
    {
      log,
      logsDir: dir,
      baseEnv: {},
      home: dir,
      runsChanged: () => undefined,
      accepting: () => true,
      spawner,
      clock,
    },
  );
  const r = { service, spawner, clock, log, dir };
  rigs.push(r);
  return r;
}

void afterEach(() => {
  for (const r of rigs.splice(0)) {
    r.service.close();
    fs.rmSync(r.dir, { recursive: true, force: true });
  }
});

/** Let pending callbacks run (exit events, the operation queue), a bounded number of turns, until `cond`. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`never happened: ${what}`);
}

function waitState(service: Service, state: ServiceState): Promise<void> {
  return until(() => service.state === state, `state ${state} (is ${service.state})`);
}

void describe('lifecycle: the transition function', () => {
  void it('maps every documented transition', () => {
    assert.equal(next('stopped', { type: 'spawned', readyPending: true }).state, 'starting');
    assert.equal(next('stopped', { type: 'spawned', readyPending: false }).state, 'running');
    assert.equal(next('starting', { type: 'ready' }).state, 'running');
    assert.equal(next('running', { type: 'ready' }).state, 'running');
    assert.equal(next('running', { type: 'stop' }).state, 'stopping');
    assert.equal(next('backoff', { type: 'stop' }).state, 'stopping');
    assert.equal(next('failed', { type: 'stop' }).state, 'failed');
    assert.equal(next('stopping', { type: 'stopped' }).state, 'stopped');
    assert.equal(next('failed', { type: 'stopped' }).state, 'failed');
    assert.equal(next('backoff', { type: 'stopped' }).state, 'stopped');
    assert.equal(next('stopped', { type: 'previous' }).state, 'stopping');
    assert.equal(next('stopping', { type: 'previous-gone' }).state, 'stopped');
    assert.equal(next('running', { type: 'previous-gone' }).state, 'running');
    assert.equal(next('running', { type: 'spawn-failed' }).state, 'failed');
    assert.deepEqual(next('stopping', { type: 'exit', outcome: { restart: 'after', delayMs: 0 } }), {
      state: 'stopping',
      effects: [],
    });
    assert.equal(next('running', { type: 'exit', outcome: { restart: 'no', clean: true } }).state, 'stopped');
    assert.equal(next('running', { type: 'exit', outcome: { restart: 'no', clean: false } }).state, 'failed');
    assert.equal(
      next('starting', { type: 'exit', outcome: { restart: 'give-up', restartsInWindow: 3, windowSecs: 60 } }).state,
      'failed',
    );
    assert.deepEqual(next('running', { type: 'exit', outcome: { restart: 'after', delayMs: 0 } }), {
      state: 'starting',
      effects: [{ type: 'restart-after', delayMs: 0 }],
    });
    assert.deepEqual(next('running', { type: 'exit', outcome: { restart: 'after', delayMs: 200 } }), {
      state: 'backoff',
      effects: [{ type: 'restart-after', delayMs: 200 }],
    });
  });
});

void describe('Service with a fake spawner and clock', () => {
  void it('restarts a crash at once, then backs off 100 ms, 200 ms on the injected clock', async () => {
    const r = rig({ max_restarts: 10 });
    const info = await r.service.start();
    assert.equal(info.state, 'running');
    assert.equal(info.pid, 1000);

    r.spawner.last.exit(1);
    await until(() => r.spawner.started.length === 2, 'the immediate restart');
    await waitState(r.service, 'running');
    assert.equal(r.service.info().restarts, 1);
    assert.equal(r.service.info().last_error, 'exited with code 1');

    r.spawner.last.exit(1);
    await waitState(r.service, 'backoff');
    assert.deepEqual(r.clock.pending(), [100]);
    r.clock.advance(99);
    await until(() => true, 'a turn');
    assert.equal(r.spawner.started.length, 2, 'not restarted before its delay');
    r.clock.advance(1);
    await until(() => r.spawner.started.length === 3, 'the restart after 100 ms');
    await waitState(r.service, 'running');

    r.spawner.last.exit(null, 'SIGSEGV');
    await waitState(r.service, 'backoff');
    assert.deepEqual(r.clock.pending(), [200]);
    assert.equal(r.service.info().last_error, 'killed by SIGSEGV');
  });

  void it('gives up after max_restarts within the window, and a user start resets the count', async () => {
    const r = rig({ max_restarts: 2 });
    await r.service.start();
    r.spawner.last.exit(3);
    await until(() => r.spawner.started.length === 2, 'restart 1');
    r.spawner.last.exit(3);
    await waitState(r.service, 'backoff');
    r.clock.advance(100);
    await until(() => r.spawner.started.length === 3, 'restart 2');
    r.spawner.last.exit(3);
    await waitState(r.service, 'failed');
    assert.equal(r.service.info().restarts, 2);
    assert.match(r.service.info().last_error ?? '', /exited with code 3; gave up after 2 restarts in 60s/);
    assert.deepEqual(r.clock.pending(), []);

    const again = await r.service.start();
    assert.equal(again.state, 'running');
    assert.equal(again.restarts, 0);
    assert.equal(again.last_error, null);
  });

  void it('a run that lasted 30 s resets the backoff and the window', async () => {
    const r = rig({ max_restarts: 1 });
    await r.service.start();
    r.spawner.last.exit(1);
    await until(() => r.spawner.started.length === 2, 'restart 1');
    await waitState(r.service, 'running');
    // The limit (1) is used up; a stable run forgets it.
    r.clock.advance(30_000);
    r.spawner.last.exit(1);
    await until(() => r.spawner.started.length === 3, 'restart after a stable run');
    await waitState(r.service, 'running');
    assert.equal(r.service.info().restarts, 2);
  });

  void it('a stop during backoff cancels the restart', async () => {
    const r = rig();
    await r.service.start();
    r.spawner.last.exit(1);
    await until(() => r.spawner.started.length === 2, 'restart 1');
    r.spawner.last.exit(1);
    await waitState(r.service, 'backoff');
    const stopped = await r.service.stop(false);
    assert.equal(stopped.state, 'stopped');
    assert.deepEqual(r.clock.pending(), []);
    r.clock.advance(60_000);
    await until(() => true, 'a turn');
    assert.equal(r.spawner.started.length, 2);
    assert.equal(r.service.state, 'stopped');
    assert.equal(r.service.wanted(), false);
  });

  void it('sends SIGKILL when stop_timeout has passed on the clock, not before', async () => {
    const r = rig({ stop_timeout: 5 });
    r.spawner.ignoreTerm = true;
    await r.service.start();
    const p = r.spawner.last;
    const stopping = r.service.stop(false);
    await until(() => p.signals.length === 1, 'SIGTERM');
    assert.equal(r.service.state, 'stopping');
    assert.deepEqual(p.signals, ['SIGTERM']);
    r.clock.advance(4_999);
    await until(() => true, 'a turn');
    assert.deepEqual(p.signals, ['SIGTERM'], 'no SIGKILL before stop_timeout');
    r.clock.advance(1);
    const info = await stopping;
    assert.deepEqual(p.signals, ['SIGTERM', 'SIGKILL']);
    assert.equal(info.state, 'stopped');
    assert.equal(info.exit_signal, 'SIGKILL');
    assert.equal(r.spawner.started.length, 1, 'a stopped service is not restarted');
    assert.match((await r.service.log.tail(20)).join('\n'), /stopped \(SIGKILL was needed\)/);
    assert.deepEqual(r.clock.pending(), []);
  });

  void it('a forced stop during a graceful one kills at once', async () => {
    const r = rig({ stop_timeout: 60 });
    r.spawner.ignoreTerm = true;
    await r.service.start();
    const p = r.spawner.last;
    const graceful = r.service.stop(false);
    await until(() => p.signals.length === 1, 'SIGTERM');
    const forced = r.service.stop(true);
    const [a, b] = await Promise.all([graceful, forced]);
    assert.deepEqual(p.signals, ['SIGTERM', 'SIGKILL']);
    assert.equal(a.state, 'stopped');
    assert.equal(b.state, 'stopped');
  });

  void it('an exit during stopping ends the stop without a restart or SIGKILL', async () => {
    const r = rig({ stop_timeout: 5 });
    r.spawner.ignoreTerm = true;
    await r.service.start();
    const p = r.spawner.last;
    const stopping = r.service.stop(false);
    await until(() => p.signals.length === 1, 'SIGTERM');
    p.exit(0);
    const info = await stopping;
    assert.equal(info.state, 'stopped');
    assert.equal(info.exit_code, 0);
    assert.deepEqual(p.signals, ['SIGTERM']);
    assert.equal(r.spawner.started.length, 1);
    assert.equal(info.restarts, 0);
  });

  void it('stays starting until the ready line, then runs', async () => {
    const r = rig({ ready_notify: true });
    const info = await r.service.start();
    assert.equal(info.state, 'starting');
    const p = r.spawner.last;
    p.ready.write('not yet');
    await until(() => true, 'a turn');
    assert.equal(r.service.state, 'starting');
    p.ready.write(' ready\n');
    await waitState(r.service, 'running');
    assert.match((await r.service.log.tail(20)).join('\n'), /ready \(notified\)/);
  });

  void it('an exit while starting is restarted, and the new run waits for readiness again', async () => {
    const r = rig({ ready_notify: true });
    await r.service.start();
    r.spawner.last.exit(1);
    await until(() => r.spawner.started.length === 2, 'restart');
    await waitState(r.service, 'starting');
    r.spawner.last.ready.write('ok\n');
    await waitState(r.service, 'running');
  });

  void it('a clean exit without restart_on_failure is stopped; a failing one is failed', async () => {
    const r = rig({ restart_on_failure: false });
    await r.service.start();
    r.spawner.last.exit(0);
    await waitState(r.service, 'stopped');
    await r.service.start();
    r.spawner.last.exit(2);
    await waitState(r.service, 'failed');
    assert.equal(r.service.info().last_error, 'exited with code 2');
    assert.equal(r.spawner.started.length, 2);
  });

  void it('a spawn failure is failed with SPAWN_FAILED and the errno', async () => {
    const r = rig();
    r.spawner.failNext = 'ENOENT';
    await assert.rejects(
      r.service.start(),
      (err: AdiError) => err.code === 'SPAWN_FAILED' && /ENOENT \(no such file or directory\)/.test(err.message),
    );
    assert.equal(r.service.state, 'failed');
    assert.equal(r.service.wanted(), false);
  });

  void it('uptime and the state entry come from the injected clock and spawner', async () => {
    const r = rig();
    await r.service.start();
    r.clock.advance(7_500);
    assert.equal(r.service.info().uptime_secs, 7);
    await until(() => r.service.stateEntries()[0]?.starttime === 10_000, 'the starttime');
    assert.equal(r.service.stateEntries()[0]?.started_at, 1_000_000);
  });
});
