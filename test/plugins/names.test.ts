// Names have owners, in a running daemon (no privilege separation): plugin folders copied in by hand
// (past `adi plugin install`'s own check) that define a taken service name are not loaded, and the
// CLI shows the conflict (`adi daemon start`, `services`, `status`, and their --json forms). A plugin
// reads only the logs of its own plugin's services: another plugin's or the admin's get
// PERMISSION_DENIED, streamed or not.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { AdiError } from '../../src/core/errors.js';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { listServices } from '../helpers/daemon.js';
import { adi, waitFor, type TempHome } from '../helpers/env.js';
import { environOf } from '../privilege/util.js';
import { pluginHome, writePlugin } from './util.js';

const SECRET = 'admin-secret-4711';

void describe('service names have owners; plugins read only their own logs', () => {
  let t: TempHome;

  async function services(): Promise<{ list: ServiceInfo[]; stderr: string }> {
    const r = await adi(['daemon', 'services', '--json'], t.env);
    assert.equal(r.code, 0, r.stderr);
    return { list: JSON.parse(r.stdout) as ServiceInfo[], stderr: r.stderr };
  }
  function plugin(name: string, service: string): void {
    writePlugin(path.join(t.paths.pluginsDir, name), { name, service: { name: service, command: 'serve' } });
  }
  async function tokenOf(service: string): Promise<string> {
    let pid = 0;
    await waitFor(
      async () => (pid = (await listServices(t.env)).find((s) => s.name === service)?.pid ?? 0) > 0,
      15_000,
      `${service} to run`,
    );
    const token = environOf(pid).ADI_DAEMON_TOKEN ?? '';
    assert.match(token, /^[0-9a-f]{64}$/, `the token of ${service}`);
    return token;
  }
  async function errorOf(p: Promise<unknown>): Promise<AdiError> {
    const e = await p.then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(e instanceof AdiError, `expected an AdiError, got ${String(e)}`);
    return e;
  }

  before(() => {
    t = pluginHome();
    // Written by hand, as a copy past `adi plugin install` would be.
    plugin('alpha', 'web');
    plugin('beta', 'web');
    plugin('gamma', 'gamma-svc');
    plugin('delta', 'delta-svc');
    plugin('epsilon', 'adminsvc');
    fs.mkdirSync(t.paths.configDir, { recursive: true });
    fs.writeFileSync(
      t.paths.servicesFile,
      `[adminsvc]\ncommand = "/bin/sh"\nargs = ["-c", "echo ${SECRET}; exec sleep 600"]\n`,
    );
  });
  after(async () => {
    await t.cleanup();
  });

  void it('adi daemon services and status show each conflict, in text and --json', async () => {
    const started = await adi(['daemon', 'start'], t.env);
    assert.equal(started.code, 0, started.stdout + started.stderr);
    // The daemon answers before it has loaded the definitions.
    await waitFor(
      async () =>
        (JSON.parse((await adi(['daemon', 'status', '--json'], t.env)).stdout) as { conflicts: string[] }).conflicts
          .length === 2,
      15_000,
      'the definitions to load',
    );

    const text = await adi(['daemon', 'services'], t.env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /Name conflicts \(a service name belongs to one source; these definitions are not loaded\):\n {2}service "adminsvc" belongs to .*\n {2}service "web": defined by plugin alpha and plugin beta/,
    );
    assert.doesNotMatch(text.stdout, /^web /m, 'nobody owns web: it is not listed as a service');

    const { list, stderr } = await services();
    assert.deepEqual(
      list.map((s) => s.name),
      ['adminsvc', 'delta-svc', 'gamma-svc'],
    );
    const admin = list.find((s) => s.name === 'adminsvc');
    assert.equal(admin?.source, 'file');
    assert.equal(admin?.plugin, undefined, 'not a plugin service');
    assert.match(admin?.conflicts?.[0] ?? '', /plugin epsilon is not loaded/);
    assert.equal(list.find((s) => s.name === 'delta-svc')?.conflicts, undefined, 'no conflicts: the field is absent');
    assert.equal(list.find((s) => s.name === 'gamma-svc')?.plugin, 'gamma');
    assert.match(stderr, /adi: name conflict: service "web": defined by plugin alpha and plugin beta/);

    const status = await adi(['daemon', 'status'], t.env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /name conflicts \(definitions not loaded; see 'adi daemon services'\):\n {4}service "adminsvc".*\n {4}service "web"/,
    );
    const json = JSON.parse((await adi(['daemon', 'status', '--json'], t.env)).stdout) as {
      conflicts: string[];
      plugin_socket: unknown;
    };
    assert.match(
      json.conflicts[0] ?? '',
      /^service "adminsvc" belongs to \S+services.toml; the definition in plugin epsilon is not loaded/,
    );
    assert.match(
      json.conflicts[1] ?? '',
      /^service "web": defined by plugin alpha and plugin beta, and none of these definitions is loaded/,
    );
    assert.equal(json.plugin_socket, null, 'no separation here: no plugin socket');
  });

  void it('once one plugin is left it owns the name, and a copy of the other added later does not take it', async () => {
    const beta = path.join(t.home, 'beta-aside');
    fs.renameSync(path.join(t.paths.pluginsDir, 'beta'), beta);
    assert.equal((await adi(['daemon', 'reload'], t.env)).code, 0);
    assert.equal((await adi(['daemon', 'start', 'web'], t.env)).code, 0);
    const before = (await services()).list.find((s) => s.name === 'web');
    assert.equal(before?.plugin, 'alpha');
    assert.equal(before?.conflicts, undefined);
    await waitFor(
      async () => (await listServices(t.env)).find((s) => s.name === 'web')?.pid != null,
      15_000,
      'web to run',
    );
    const pid = (await services()).list.find((s) => s.name === 'web')?.pid;

    fs.renameSync(beta, path.join(t.paths.pluginsDir, 'beta'));
    assert.equal((await adi(['daemon', 'reload'], t.env)).code, 0);
    const after = (await services()).list.find((s) => s.name === 'web');
    assert.equal(after?.plugin, 'alpha', 'only one owns it');
    assert.equal(after?.pid, pid, 'the same process: not restarted with the copy');
    assert.match(
      after?.conflicts?.join('\n') ?? '',
      /service "web" belongs to plugin alpha; the definition in plugin beta is not loaded: plugin alpha owned it first/,
    );
    const status = await adi(['daemon', 'status'], t.env);
    assert.match(status.stdout, /service "web" belongs to plugin alpha/);

    // A restarted daemon remembers the owner (the data dir's service-owners.json).
    assert.equal((await adi(['daemon', 'stop'], t.env)).code, 0);
    assert.equal((await adi(['daemon', 'start'], t.env)).code, 0);
    await waitFor(
      async () => (await listServices(t.env)).some((s) => s.name === 'web'),
      15_000,
      'the definitions to load',
    );
    const restarted = (await services()).list.find((s) => s.name === 'web');
    assert.equal(restarted?.plugin, 'alpha');
    assert.match(restarted?.conflicts?.join('\n') ?? '', /the definition in plugin beta is not loaded/);
  });

  void it("a plugin reading another plugin's or the admin's logs gets PERMISSION_DENIED; its own it reads", async () => {
    for (const name of ['gamma-svc', 'delta-svc', 'adminsvc'])
      assert.equal((await adi(['daemon', 'start', name], t.env)).code, 0);
    const asGamma = new DaemonClient({ env: t.env, token: await tokenOf('gamma-svc') });
    try {
      await waitFor(
        async () => (await asGamma.serviceLogs('gamma-svc')).some((l) => l.endsWith(' serving')),
        15_000,
        "gamma's own log",
      );
      for (const other of ['delta-svc', 'adminsvc', 'web', 'no-such-service']) {
        const e = await errorOf(asGamma.serviceLogs(other));
        assert.equal(e.code, 'PERMISSION_DENIED', `${other}: ${e.message}`);
        assert.match(e.message, /plugin:gamma may read the logs of only its own plugin's services/);
        const follow = await errorOf(
          (async () => {
            for await (const line of asGamma.followServiceLogs(other)) return line;
            return null;
          })(),
        );
        assert.equal(follow.code, 'PERMISSION_DENIED', `follow ${other}`);
      }
      const admin = new DaemonClient({ env: t.env });
      try {
        await waitFor(
          async () => (await admin.serviceLogs('adminsvc')).some((l) => l.includes(SECRET)),
          15_000,
          'the admin service output',
        );
      } finally {
        admin.close();
      }
      assert.ok(await asGamma.isRunning(), 'the daemon and the connection are fine');
    } finally {
      asGamma.close();
    }
  });
  void it("a name the admin gives up passes to a plugin with a log of its own: the admin's lines stay on disk, unserved", async () => {
    const admin = new DaemonClient({ env: t.env });
    try {
      assert.ok((await admin.serviceLogs('adminsvc')).some((l) => l.includes(SECRET)));
      // The admin follows it while the name changes hands: that stream ends rather than go on with
      // the new owner's lines.
      const followed: string[] = [];
      const follower = (async () => {
        for await (const line of admin.followServiceLogs('adminsvc')) followed.push(line);
      })();

      fs.writeFileSync(t.paths.servicesFile, '');
      assert.equal((await adi(['daemon', 'reload'], t.env)).code, 0);
      await waitFor(
        async () => (await listServices(t.env)).find((s) => s.name === 'adminsvc')?.plugin === 'epsilon',
        15_000,
        'plugin epsilon to own adminsvc',
      );
      await follower;
      assert.ok(!followed.some((l) => l.endsWith(' serving')), "the admin's stream ended before epsilon's output");

      const asEpsilon = new DaemonClient({ env: t.env, token: await tokenOf('adminsvc') });
      try {
        await waitFor(
          async () => (await asEpsilon.serviceLogs('adminsvc')).some((l) => l.endsWith(' serving')),
          15_000,
          "epsilon's own output",
        );
        const lines = await asEpsilon.serviceLogs('adminsvc', { lines: 1000 });
        assert.ok(!lines.some((l) => l.includes(SECRET)), `no line of the admin's: ${lines.join(' | ')}`);
      } finally {
        asEpsilon.close();
      }
      const previous = path.join(t.paths.logsDir, '.previous');
      const [moved] = fs.readdirSync(previous).filter((d) => d.startsWith('adminsvc.'));
      assert.ok(moved !== undefined, 'the earlier log is kept');
      assert.match(fs.readFileSync(path.join(previous, moved, 'adminsvc.log'), 'utf8'), new RegExp(SECRET));
      assert.equal(fs.readFileSync(path.join(previous, moved, 'owner'), 'utf8'), 'admin\n');
      assert.equal(fs.readFileSync(path.join(t.paths.logsDir, 'adminsvc.owner'), 'utf8'), 'plugin:epsilon\n');
    } finally {
      admin.close();
    }
  });
});
