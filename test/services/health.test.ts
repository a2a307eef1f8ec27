// Readiness (notification fd, probes) and liveness (probe failures restart under the restart policy),
// the probes themselves, and that no timer runs for a service without probes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { runProbe } from '../../src/services/health.js';
import {
  freePort,
  isAlive,
  makeEnv,
  nodeService,
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

const probeCtx = { env: process.env, cwd: process.cwd() };
const base = { interval_secs: 0.1, timeout_secs: 1, failure_threshold: 1 };

/**
 * A probe that records its pid and then hangs. A shell starts in milliseconds even on a loaded machine
 * (node may take longer than the short probe timeouts used here, and be killed before it writes).
 */
function hangingProbe(pidFile: string): string[] {
  return ['/bin/sh', '-c', 'echo $$ >> "$1"; exec sleep 1000', 'probe', pidFile];
}

void describe('probes', () => {
  let server: http.Server;
  let port = 0;
  void before(async () => {
    server = http.createServer((req, res) => {
      res.statusCode = req.url === '/ok' ? 200 : 500;
      res.end('x');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  void after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  void it('http: status below 400 passes, 500 and refused connections fail', async () => {
    assert.equal((await runProbe({ ...base, http: `http://127.0.0.1:${port}/ok` }, probeCtx)).ok, true);
    const bad = await runProbe({ ...base, http: `http://127.0.0.1:${port}/bad` }, probeCtx);
    assert.equal(bad.ok, false);
    assert.match(bad.detail, /status 500/);
    const closed = await freePort();
    const refused = await runProbe({ ...base, http: `http://127.0.0.1:${closed}/` }, probeCtx);
    assert.equal(refused.ok, false);
    assert.match(refused.detail, /ECONNREFUSED/);
  });

  void it('tcp: connect passes, refused fails', async () => {
    assert.equal((await runProbe({ ...base, tcp: port }, probeCtx)).ok, true);
    assert.equal((await runProbe({ ...base, tcp: `127.0.0.1:${port}` }, probeCtx)).ok, true);
    const closed = await freePort();
    const refused = await runProbe({ ...base, tcp: closed }, probeCtx);
    assert.equal(refused.ok, false);
    assert.match(refused.detail, new RegExp(`tcp 127.0.0.1:${closed}: ECONNREFUSED`));
  });

  void it('command: exit 0 passes; a code, a missing program and a timeout fail; a timed-out probe is killed', async () => {
    assert.equal((await runProbe({ ...base, command: ['/bin/true'] }, probeCtx)).ok, true);
    const f = await runProbe({ ...base, command: ['/bin/sh', '-c', 'echo broken >&2; exit 4'] }, probeCtx);
    assert.equal(f.ok, false);
    assert.match(f.detail, /exited with code 4: broken/);
    const missing = await runProbe({ ...base, command: ['/no/such/probe'] }, probeCtx);
    assert.equal(missing.ok, false);
    assert.match(missing.detail, /ENOENT/);

    const pidFile = `${fs.mkdtempSync(path.join(os.tmpdir(), 'adi-probe-'))}/pids`;
    const slow = await runProbe({ ...base, timeout_secs: 0.3, command: hangingProbe(pidFile) }, probeCtx);
    assert.equal(slow.ok, false);
    assert.match(slow.detail, /timed out after 0.3s/);
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    fs.rmSync(path.dirname(pidFile), { recursive: true, force: true });
    await waitFor(() => !isAlive(pid), 3000, 'the timed-out probe to be killed');
  });
});

void describe('readiness and liveness', () => {
  void it('ready_notify: starting until the service writes a line to $ADI_READY_FD', async () => {
    const { manager } = setup();
    const info = await manager.start('rdy', adhoc(nodeService('slow-ready.js', ['400'], { ready_notify: true })));
    assert.equal(info.state, 'starting');
    assert.ok(info.pid !== null);
    await waitState(manager, 'rdy', 'running');
    const sys = texts(await manager.tail('rdy', 20), 'sys');
    assert.ok(sys.includes('ready (notified)'), sys.join('\n'));
  });

  void it('ready_notify: a service that never notifies stays starting and still stops', async () => {
    const { manager, tag } = setup();
    await manager.start('mute', adhoc(nodeService('sleeper.js', [], { ready_notify: true })));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(manager.get('mute')?.state, 'starting');
    assert.equal((await manager.stop('mute', false)).state, 'stopped');
    assert.deepEqual(taggedPids(tag), []);
  });

  void it('readiness probe: starting until the port accepts connections', async () => {
    const { manager } = setup();
    const port = await freePort();
    const info = await manager.start(
      'web',
      adhoc(nodeService('tcp-server.js', [String(port), '400'], { readiness: { tcp: port, interval_secs: 0.1 } })),
    );
    assert.equal(info.state, 'starting');
    await waitState(manager, 'web', 'running');
  });

  void it('liveness: failing threshold times in a row restarts under the policy, then gives up', async () => {
    const { manager } = setup();
    const port = await freePort();
    await manager.start(
      'live',
      adhoc(
        nodeService('tcp-server.js', [String(port), '0', 'close-after:300'], {
          max_restarts: 1,
          stop_timeout: 1,
          readiness: { tcp: port, interval_secs: 0.05 },
          liveness: { tcp: port, interval_secs: 0.1, timeout_secs: 0.5, failure_threshold: 2 },
        }),
      ),
    );
    await waitState(manager, 'live', 'running');
    const restarted = await waitFor(
      () => {
        const i = manager.get('live');
        return i !== undefined && i.restarts === 1 ? i : undefined;
      },
      10_000,
      'a liveness restart',
    );
    assert.match(restarted.last_error ?? '', new RegExp(`^liveness check failed: tcp 127.0.0.1:${port}: ECONNREFUSED`));
    const failed = await waitState(manager, 'live', 'failed');
    assert.equal(failed.restarts, 1);
    assert.match(failed.last_error ?? '', /^liveness check failed: .*; gave up after 1 restarts in 60s$/);
    // The process was ended by SIGTERM from the liveness kill.
    assert.equal(failed.exit_signal, 'SIGTERM');
  });

  void it('liveness: a hanging command probe is killed at its timeout and counts as a failure', async () => {
    const { manager, dir, tag } = setup();
    const pidFile = `${dir}/probe-pids`;
    await manager.start(
      'hang',
      adhoc(
        nodeService('sleeper.js', [], {
          max_restarts: 0,
          liveness: { command: hangingProbe(pidFile), interval_secs: 0.1, timeout_secs: 0.3, failure_threshold: 1 },
        }),
      ),
    );
    const failed = await waitState(manager, 'hang', 'failed');
    assert.match(failed.last_error ?? '', /^liveness check failed: .* timed out after 0.3s; gave up after 0 restarts/);
    const probePid = Number(fs.readFileSync(pidFile, 'utf8').trim().split('\n')[0]);
    await waitFor(() => !isAlive(probePid), 3000, 'the probe to be killed');
    assert.deepEqual(taggedPids(tag), []);
  });

  void it('a service without probes arms no timer (an idle daemon does not poll)', async () => {
    const { manager } = setup();
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    await manager.start('idle', adhoc({ command: '/bin/sleep', args: ['1000'] }));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(timers(), before);
  });
});
