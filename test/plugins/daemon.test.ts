// Plugins and a running daemon (no privilege separation): install makes the daemon list the plugin's
// service as stopped, with no restart; it starts by name, restarts on crash per its manifest, logs to
// `adi daemon logs`; the example plugin's `import { DaemonClient } from 'adi-daemon'` works inside it;
// uninstall stops it and removes plugin and approval.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { readApproval } from '../../src/plugins/approvals.js';
import { listServices, serviceLog } from '../helpers/daemon.js';
import { adi, alive, daemonPids, waitFor, type TempHome } from '../helpers/env.js';
import { EXAMPLE, pluginHome } from './util.js';

void describe('plugin services in a running daemon', () => {
  let t: TempHome;
  let daemonPid = 0;

  async function services(): Promise<ServiceInfo[]> {
    const r = await adi(['daemon', 'services', '--json'], t.env);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ServiceInfo[];
  }
  async function hello(): Promise<ServiceInfo | undefined> {
    return (await services()).find((s) => s.name === 'hello');
  }
  async function logs(): Promise<string> {
    const r = await adi(['daemon', 'logs', 'hello', '-n', '200'], t.env);
    return r.stdout;
  }

  before(async () => {
    t = pluginHome();
    const r = await adi(['daemon', 'start'], t.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const pids = daemonPids(t.home);
    assert.equal(pids.length, 1);
    daemonPid = pids[0] as number;
  });
  after(async () => {
    await t.cleanup();
  });

  void it('install: the daemon lists the service as stopped, without a restart', async () => {
    const r = await adi(['plugin', 'install', EXAMPLE, '--yes'], t.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Its service "hello" is stopped; start it with: adi daemon start hello/);
    const info = await hello();
    assert.equal(info?.state, 'stopped');
    assert.equal(info?.source, 'plugin');
    assert.deepEqual(daemonPids(t.home), [daemonPid], 'the same daemon');
  });

  void it("starts by name; the service imports DaemonClient from 'adi-daemon', lists services and runs a command", async () => {
    const r = await adi(['daemon', 'start', 'hello'], t.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await waitFor(
      async () => /\[hello\] ready/.test(await serviceLog(t.env, 'hello', 200)),
      30_000,
      'the hello service to log "ready"',
    );
    const text = await logs();
    assert.match(text, /\[hello\] connected to adi daemon \S+ \(pid \d+\)/);
    assert.match(text, /\[hello\] services: .*hello=(running|starting)/);
    assert.match(text, /\[hello\] run id -un: exit 0, user \S+/);
    // Without separation SudoRun is refused; with it, the approved pattern runs as root.
    assert.match(text, /\[hello\] sudoRun id -u (refused: SUDO_DENIED|: exit 0, uid 0)/);
    assert.equal((await hello())?.state, 'running');
  });

  void it('restarts on a crash, as its manifest says', async () => {
    const before = await hello();
    assert.ok(before?.pid !== null && before?.pid !== undefined);
    process.kill(before.pid, 'SIGKILL');
    await waitFor(
      async () => {
        const now = (await listServices(t.env)).find((s) => s.name === 'hello');
        return now?.state === 'running' && now.pid !== null && now.pid !== before.pid && now.restarts >= 1;
      },
      30_000,
      'hello to be restarted',
    );
    assert.equal(alive(before.pid), false);
  });

  void it('reinstalling restarts a running service so that it runs the new files', async () => {
    const before = await hello();
    assert.equal(before?.state, 'running');
    const r = await adi(['plugin', 'install', EXAMPLE], t.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /not asking again/);
    assert.match(r.stdout, /Restarted its service "hello" to run the new version\./);
    const now = await hello();
    assert.equal(now?.state, 'running');
    assert.notEqual(now?.pid, before?.pid);
  });

  void it('uninstall stops the service and removes plugin and approval; the daemon forgets the service', async () => {
    const pid = (await hello())?.pid;
    assert.ok(typeof pid === 'number');
    const r = await adi(['plugin', 'uninstall', 'hello-plugin'], t.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Stopped its service "hello"\.\n/);
    await waitFor(() => !alive(pid), 10_000, 'the service process to be gone');
    assert.equal(await hello(), undefined);
    assert.equal(fs.existsSync(path.join(t.paths.pluginsDir, 'hello-plugin')), false);
    assert.equal(readApproval(t.paths, 'hello-plugin'), null);
    assert.deepEqual(daemonPids(t.home), [daemonPid]);
  });
});
