// Pure parts: config validation and normalisation, the restart policy, /proc parsing, launch parameters.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { parseTcpTarget, validateServiceConfig } from '../../src/protocol/config-schema.js';
import { configKey } from '../../src/services/config.js';
import { buildLaunch } from '../../src/services/launch.js';
import { liveMembers, ProcScanner, terminate, type ProcEntry } from '../../src/system/process-group.js';
import { markerFromEnviron, parseProcStat } from '../../src/system/proc.js';
import { RestartPolicy } from '../../src/services/restart-policy.js';

void describe('config', () => {
  void it('fills the documented defaults', () => {
    const r = validateServiceConfig({ command: '/bin/x' });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.config, {
      command: '/bin/x',
      args: [],
      env: {},
      working_dir: null,
      restart_on_failure: true,
      max_restarts: 5,
      privileged: false,
      stop_timeout: 10,
      ready_notify: false,
      readiness: null,
      liveness: null,
      log_max_bytes: null,
      log_max_files: null,
      pids_max: null,
      memory_max: null,
    });
    assert.equal(r.autoStart, false);
  });

  void it('normalised forms compare equal whatever the key order or spelled-out defaults', () => {
    const a = validateServiceConfig({ command: '/x', args: ['1'], env: { B: '2', A: '1' } }).config;
    const b = validateServiceConfig({
      env: { A: '1', B: '2' },
      max_restarts: 5,
      args: ['1'],
      command: '/x',
      readiness: null,
    }).config;
    assert.ok(a && b);
    assert.equal(configKey(a), configKey(b));
    const c = validateServiceConfig({ command: '/x', args: ['2'] }).config;
    assert.ok(c);
    assert.notEqual(configKey(a), configKey(c));
  });

  void it('rejects wrong types, bounds, relative dirs, unknown keys and auto_start on the wire', () => {
    const r = validateServiceConfig({
      command: '',
      args: ['ok', 3],
      working_dir: 'rel/dir',
      stop_timeout: -1,
      max_restarts: 1.5,
      privileged: 'no',
      liveness: { tcp: 70000, interval_secs: 0 },
      log_max_files: 101,
      auto_start: true,
      extra: 1,
    });
    assert.equal(r.config, null);
    const fields = r.errors.map((e) => e.field).sort();
    assert.deepEqual(fields, [
      'args[1]',
      'auto_start',
      'command',
      'extra',
      'liveness.interval_secs',
      'liveness.tcp',
      'log_max_files',
      'max_restarts',
      'privileged',
      'stop_timeout',
      'working_dir',
    ]);
    assert.deepEqual(
      validateServiceConfig('nope').errors.map((e) => e.field),
      ['(table)'],
    );
    assert.deepEqual(
      validateServiceConfig({ command: '/x', auto_start: true }, { allowAutoStart: true }).autoStart,
      true,
    );
  });

  void it('probe tables: exactly one kind; readiness and liveness get their own defaults', () => {
    const r = validateServiceConfig({
      command: '/x',
      readiness: { http: 'http://127.0.0.1:1/h' },
      liveness: { command: ['/bin/check', '-q'] },
    });
    assert.deepEqual(r.config?.readiness, {
      http: 'http://127.0.0.1:1/h',
      interval_secs: 1,
      timeout_secs: 5,
      failure_threshold: 3,
    });
    assert.deepEqual(r.config?.liveness, {
      command: ['/bin/check', '-q'],
      interval_secs: 10,
      timeout_secs: 5,
      failure_threshold: 3,
    });
    assert.match(
      validateServiceConfig({ command: '/x', liveness: {} }).errors[0]?.message ?? '',
      /needs one of command, tcp or http/,
    );
    assert.deepEqual(
      validateServiceConfig({ command: '/x', liveness: { tcp: 1, constructor: 1 } }).errors.map((e) => e.field),
      ['liveness.constructor'],
      'a key inherited from Object.prototype is still unknown',
    );
    assert.match(
      validateServiceConfig({ command: '/x', liveness: { http: 'ftp://x' } }).errors[0]?.message ?? '',
      /http:\/\/ or https:\/\//,
    );
    assert.match(
      validateServiceConfig({ command: '/x', liveness: { command: [] } }).errors[0]?.message ?? '',
      /needs at least the program/,
    );
  });

  void it('parses tcp targets', () => {
    assert.deepEqual(parseTcpTarget(80), { host: '127.0.0.1', port: 80 });
    assert.deepEqual(parseTcpTarget('8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseTcpTarget('db:5432'), { host: 'db', port: 5432 });
    assert.deepEqual(parseTcpTarget('[::1]:9'), { host: '::1', port: 9 });
    assert.equal(parseTcpTarget(0), null);
    assert.equal(parseTcpTarget('x:99999'), null);
    assert.equal(parseTcpTarget(true), null);
  });
});

void describe('restart policy', () => {
  void it('first restart immediate, then 100, 200, 400 ms ... capped at 30 s', () => {
    const p = new RestartPolicy(1000);
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 12; i++) {
      const d = p.onExit(10, now);
      assert.equal(d.action, 'restart');
      if (d.action === 'restart') delays.push(d.delayMs);
      now += 1000;
    }
    assert.deepEqual(delays.slice(0, 6), [0, 100, 200, 400, 800, 1600]);
    assert.equal(p.delayFor(100), 30_000);
  });

  void it('gives up after max_restarts within the window; a stable run or a user start resets', () => {
    const p = new RestartPolicy(3);
    assert.equal(p.onExit(10, 0).action, 'restart');
    assert.equal(p.onExit(10, 100).action, 'restart');
    assert.equal(p.onExit(10, 400).action, 'restart');
    const d = p.onExit(10, 800);
    assert.deepEqual(d, { action: 'give-up', restartsInWindow: 3, windowSecs: 60 });
    // Outside the window, old restarts no longer count.
    assert.equal(p.onExit(10, 70_000).action, 'restart');
    // A 30 s run resets the backoff: the next restart is immediate again.
    assert.deepEqual(p.onExit(30_000, 200_000), { action: 'restart', delayMs: 0 });
    p.reset();
    assert.deepEqual(p.onExit(10, 200_001), { action: 'restart', delayMs: 0 });
    assert.deepEqual(new RestartPolicy(0).onExit(10, 0).action, 'give-up');
  });
});

void describe('/proc parsing and launch', () => {
  void it('parses stat with spaces and parens in the command name', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    fields[1] = '1';
    fields[2] = '4242';
    fields[19] = '987654';
    const stat = parseProcStat(`123 (we ird) (x) ${fields.join(' ')}`);
    assert.deepEqual(stat, {
      state: 'S',
      ppid: 1,
      pgid: 4242,
      ticks: 14 + 15 + 16 + 17,
      starttime: 987654,
      rssPages: 24,
    });
    assert.equal(parseProcStat('garbage'), null);
  });

  void it('finds the marker in a raw environ and matches members by group or marker', () => {
    const environ = Buffer.from('A=1\0ADI_SERVICE_IDX=no\0ADI_SERVICE_ID=abc\0B=2\0');
    assert.equal(markerFromEnviron(environ), 'abc');
    assert.equal(markerFromEnviron(Buffer.from('A=1\0')), null);
    const entries = [
      { pid: 1, pgid: 10, state: 'S', marker: null },
      { pid: 2, pgid: 20, state: 'S', marker: 'abc' },
      { pid: 3, pgid: 10, state: 'Z', marker: null },
      { pid: 4, pgid: 30, state: 'S', marker: 'other' },
    ];
    assert.deepEqual(
      liveMembers(entries, [{ pgid: 10, marker: 'abc' }]).map((e) => e.pid),
      [1, 2],
    );
  });

  void it('buildLaunch: detached, piped, cwd, env with markers that the service env cannot override', () => {
    const config = validateServiceConfig({
      command: '/bin/x',
      args: ['a'],
      env: { ADI_SERVICE_ID: 'forged', K: 'v' },
      ready_notify: true,
    }).config;
    assert.ok(config);
    const l = buildLaunch('svc', config, {
      baseEnv: { PATH: '/bin', ADI_READY_FD: '9' },
      home: '/home/u',
      runId: 'r1',
    });
    assert.equal(l.file, '/bin/x');
    assert.deepEqual(l.args, ['a']);
    assert.equal(l.cwd, '/home/u');
    assert.equal(l.options.detached, true);
    assert.deepEqual(l.options.stdio, ['ignore', 'pipe', 'pipe', 'pipe']);
    assert.deepEqual(l.env, { PATH: '/bin', K: 'v', ADI_SERVICE_ID: 'r1', ADI_SERVICE_NAME: 'svc', ADI_READY_FD: '3' });
    const plain = validateServiceConfig({ command: '/bin/x', working_dir: '/srv' }).config;
    assert.ok(plain);
    const p = buildLaunch('svc', plain, { baseEnv: { ADI_READY_FD: '9' }, home: '/home/u', runId: 'r2' });
    assert.equal(p.cwd, '/srv');
    assert.equal(p.env.ADI_READY_FD, undefined);
    assert.deepEqual(p.options.stdio, ['ignore', 'pipe', 'pipe']);
  });
});

void describe('terminate', () => {
  void it('never misses a leader known to be alive, even if a scan predates it', async () => {
    class BlindScanner extends ProcScanner {
      override scan(): Promise<ProcEntry[]> {
        return Promise.resolve([]);
      }
    }
    const child = spawn('/bin/sleep', ['1000'], { detached: true, stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    let exited = false;
    const gone = new Promise((r) =>
      child.once('exit', () => {
        exited = true;
        r(undefined);
      }),
    );
    const t = terminate([{ pgid: child.pid as number, marker: 'x', leaderAlive: () => !exited }], {
      graceMs: 2000,
      scanner: new BlindScanner(),
    });
    const result = await t.done;
    await gone;
    assert.equal(exited, true);
    assert.equal(result.killed, false, 'SIGTERM was enough');
  });
});
