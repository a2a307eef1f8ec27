// Plugins under privilege separation (issue 5 item 4), for real: needs root (CI runs as root), skipped
// otherwise. The admin's HOME is 0700; the plugin user must still read and run the plugin and the
// adi-daemon package it imports, and must not be able to change it, nor read approvals or tokens.
// It sets up its own users adi-ptest / adi-ptest-root with `adi daemon setup` and removes them after.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cleanEnv, lookupUser, manifestPath, separationStatus, type UserEntry } from '../../src/system/privilege.js';
import { approvalsDir, readApproval } from '../../src/plugins/approvals.js';
import { sharedPluginsDir } from '../../src/system/privilege.js';
import { adi, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { EXAMPLE, writePlugin } from './util.js';
import { uidOf } from '../helpers/proc.js';
import { serviceLog } from '../helpers/daemon.js';

const IS_ROOT = process.getuid?.() === 0;
const skip = IS_ROOT && process.platform === 'linux' ? false : 'needs root on Linux';
if (skip !== false) console.log('# plugin separation tests skipped: they need root (CI runs them as root)');

const ADI = 'adi-ptest';
const ADI_ROOT = 'adi-ptest-root';
const PLUGINS = sharedPluginsDir(ADI);
const PLUGIN_DIR = path.join(PLUGINS, 'hello-plugin');

/** Run node as the plugin user, in a clean environment, like a plugin service. */
function asPluginUser(user: UserEntry, args: string[], cwd = '/'): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, args, {
    cwd,
    uid: user.uid,
    gid: user.gid,
    env: cleanEnv({ USER: ADI }),
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

void describe('plugins with privilege separation and a 0700 home', { skip }, () => {
  let t: TempHome;
  let user: UserEntry;

  before(async () => {
    t = tempHome({ ADI_USER: ADI, ADI_ROOT_USER: ADI_ROOT });
    if (fs.existsSync(manifestPath(ADI))) await adi(['daemon', 'setup', '--remove'], t.env); // a crashed earlier run
    assert.equal(lookupUser(ADI), null, `${ADI} exists before the test; delete it`);
    const setup = await adi(['daemon', 'setup', '--admin', 'root'], t.env, { timeoutMs: 120_000 });
    assert.equal(setup.code, 0, setup.stdout + setup.stderr);
    assert.match(setup.stdout, new RegExp(`create ${PLUGINS.replaceAll('/', '\\/')} .*owned by root, mode 0755`));
    const u = lookupUser(ADI);
    assert.ok(u !== null);
    user = u;
    assert.equal(separationStatus({ adiUser: ADI, adiRootUser: ADI_ROOT }).active, true);
  });

  after(async () => {
    for (const name of ['hello-plugin', 'probe', 'probe2']) {
      if (fs.existsSync(path.join(PLUGINS, name))) await adi(['plugin', 'uninstall', name], t.env);
    }
    await t.cleanup();
    const r = await adi(['daemon', 'setup', '--remove'], { ...t.env, HOME: '/' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(lookupUser(ADI), null);
    assert.equal(fs.existsSync(PLUGINS), false, 'the emptied plugins folder is removed with the setup');
  });

  void it('installs outside the 0700 home, readable by the plugin user and writable by the admin only', async () => {
    assert.equal(fs.statSync(t.home).mode & 0o777, 0o700);
    const r = await adi(['plugin', 'install', EXAMPLE, '--yes'], t.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`Installed hello-plugin 1\\.0\\.0 in ${PLUGIN_DIR.replaceAll('/', '\\/')}\\n`));
    assert.equal(fs.existsSync(path.join(t.paths.pluginsDir, 'hello-plugin')), false, 'not in the data dir');

    const mode = (p: string): number => fs.lstatSync(p).mode & 0o7777;
    assert.equal(mode(PLUGINS), 0o755);
    assert.equal(mode(PLUGIN_DIR), 0o755);
    assert.equal(mode(path.join(PLUGIN_DIR, 'package.json')), 0o644);
    assert.equal(mode(path.join(PLUGIN_DIR, 'cli.js')), 0o755);
    assert.equal(
      fs.readlinkSync(path.join(PLUGIN_DIR, 'node_modules', 'adi-daemon')),
      path.join('..', '..', '.runtime', 'adi-daemon'),
    );
    assert.equal(mode(path.join(PLUGINS, '.runtime', 'adi-daemon', 'dist', 'src', 'index.js')), 0o644);
    assert.deepEqual(readApproval(t.paths, 'hello-plugin')?.patterns, ['/usr/bin/id -u']);

    const list = await adi(['plugin', 'list', '--json'], t.env);
    assert.equal((JSON.parse(list.stdout) as Array<{ dir: string }>)[0]?.dir, PLUGIN_DIR);
  });

  void it("the plugin user runs the plugin's bin and imports adi-daemon from the copy", () => {
    const imp = asPluginUser(
      user,
      ['--input-type=module', '-e', "import { DaemonClient } from 'adi-daemon'; console.log(typeof DaemonClient)"],
      PLUGIN_DIR,
    );
    assert.equal(imp.status, 0, imp.out);
    assert.equal(imp.out.trim(), 'function');
    const help = asPluginUser(user, [path.join(PLUGIN_DIR, 'cli.js'), 'help']);
    assert.equal(help.status, 0, help.out);
    assert.match(help.out, /Usage: hello-plugin/);
  });

  void it('the plugin user cannot change the plugin or the runtime, nor read approvals, tokens or the home', () => {
    const tryWrite = (file: string): string => {
      const r = asPluginUser(user, [
        '-e',
        `try { require('fs').writeFileSync(${JSON.stringify(file)}, 'x'); console.log('WROTE') } catch (e) { console.log(e.code) }`,
      ]);
      return r.out.trim();
    };
    assert.equal(tryWrite(path.join(PLUGIN_DIR, 'cli.js')), 'EACCES');
    assert.equal(tryWrite(path.join(PLUGIN_DIR, 'new.js')), 'EACCES');
    assert.equal(tryWrite(path.join(PLUGINS, '.runtime', 'adi-daemon', 'dist', 'src', 'index.js')), 'EACCES');
    assert.equal(tryWrite(path.join(PLUGINS, 'other-plugin')), 'EACCES');
    const tryRead = (file: string): string => {
      const r = asPluginUser(user, [
        '-e',
        `try { require('fs').readFileSync(${JSON.stringify(file)}); console.log('READ') } catch (e) { console.log(e.code) }`,
      ]);
      return r.out.trim();
    };
    assert.equal(tryRead(path.join(approvalsDir(t.paths), 'hello-plugin.json')), 'EACCES');
    assert.equal(tryRead(t.paths.tokenFile), 'EACCES');
    assert.equal(tryWrite(path.join(approvalsDir(t.paths), 'evil.json')), 'EACCES');
  });

  void it('its service runs as the plugin user: run as that user, the approved sudoRun as root', async () => {
    assert.equal((await adi(['daemon', 'start'], t.env)).code, 0);
    const start = await adi(['daemon', 'start', 'hello'], t.env);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    const logs = async (): Promise<string> => (await adi(['daemon', 'logs', 'hello', '-n', '200'], t.env)).stdout;
    await waitFor(
      async () => /\[hello\] (ready|error)/.test(await serviceLog(t.env, 'hello', 200)),
      60_000,
      'the hello service to log "ready"',
    );
    const text = await logs();
    assert.match(text, new RegExp(`\\[hello\\] run id -un: exit 0, user ${ADI}\\n`));
    assert.match(text, /\[hello\] sudoRun id -u: exit 0, uid 0\n/);
    const pid = (
      JSON.parse((await adi(['daemon', 'services', '--json'], t.env)).stdout) as Array<{
        name: string;
        pid: number | null;
      }>
    ).find((s) => s.name === 'hello')?.pid;
    assert.ok(typeof pid === 'number');
    assert.equal(uidOf(pid), user.uid, 'the service process runs as the plugin user');
  });

  void it('a plugin file changed after its approval: its SudoRun is denied with the reason, until reinstalled', async () => {
    const logs = async (): Promise<string> => (await adi(['daemon', 'logs', 'hello', '-n', '400'], t.env)).stdout;
    const logged = (): Promise<string> => serviceLog(t.env, 'hello', 400);
    const cli = path.join(PLUGIN_DIR, 'cli.js');
    const original = fs.readFileSync(cli, 'utf8');
    // Edited by hand (or a half-written update): the same code plus a comment.
    fs.writeFileSync(cli, `${original}\n// edited\n`);
    assert.equal((await adi(['daemon', 'stop', 'hello'], t.env)).code, 0);
    assert.equal((await adi(['daemon', 'start', 'hello'], t.env)).code, 0);
    const refusal = /\[hello\] sudoRun id -u refused: SUDO_DENIED .*no longer those approved/;
    await waitFor(async () => refusal.test(await logged()), 60_000, 'the refusal');
    assert.match(await logs(), refusal);
    // The approved content again: allowed again (the check is of content, not of times).
    fs.writeFileSync(cli, original);
    assert.equal((await adi(['daemon', 'stop', 'hello'], t.env)).code, 0);
    const before = (await logged()).split('sudoRun id -u: exit 0, uid 0').length;
    assert.equal((await adi(['daemon', 'start', 'hello'], t.env)).code, 0);
    await waitFor(
      async () => (await logged()).split('sudoRun id -u: exit 0, uid 0').length > before,
      60_000,
      'sudoRun allowed again',
    );
  });

  void it("from inside a plugin's service: only its own approved argv runs as root", async () => {
    // A probe plugin tries what the issue lists and logs one RESULT line; a second plugin, with no
    // approval, tries the first one's approved command.
    const probe = `import { DaemonClient } from 'adi-daemon';
const c = new DaemonClient();
const outcome = (p) => p.then((r) => 'ok:' + Buffer.from(r.stdout).toString().trim(), (e) => 'denied:' + (e.code ?? e.message));
const sudo = (cmd, args) => outcome(c.sudoRun(cmd, args, 'test'));
const r = {};
if (process.env.PROBE_ROLE === 'second') {
  r.borrowed = await sudo('/usr/bin/id', ['-u']);
} else {
  r.approved = await sudo('/usr/bin/id', ['-u']);
  r.extraArg = await sudo('/usr/bin/id', ['-u', '-n']);
  r.outside = await sudo('/usr/bin/whoami', []);
  r.shell = await sudo('/bin/sh', ['-c', 'id -u']);
  r.semicolon = await sudo('/usr/bin/id', ['-u;id']);
  r.privilegedService = await outcome(c.startService('probe-root', { command: '/bin/sleep', args: ['100'], privileged: true }).then(() => ({ stdout: new Uint8Array() })));
}
console.log('RESULT ' + JSON.stringify(r));
c.close();
setInterval(() => {}, 1000);
`;
    const first = path.join(t.home, 'probe-src');
    const second = path.join(t.home, 'probe2-src');
    writePlugin(first, {
      name: 'probe',
      service: { name: 'probe-svc', command: 'serve', privileged_commands: ['/usr/bin/id -u'] },
      cli: probe,
    });
    writePlugin(second, {
      name: 'probe2',
      service: { name: 'probe2-svc', command: 'serve' },
      cli: `process.env.PROBE_ROLE = 'second';\n${probe}`,
    });
    for (const src of [first, second]) {
      const r = await adi(['plugin', 'install', src, '--yes'], t.env, { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    for (const svc of ['probe-svc', 'probe2-svc']) {
      const r = await adi(['daemon', 'start', svc], t.env);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    const result = async (svc: string): Promise<Record<string, string> | null> => {
      const line = /RESULT (.*)/.exec((await adi(['daemon', 'logs', svc, '-n', '50'], t.env)).stdout)?.[1];
      return line === undefined ? null : (JSON.parse(line) as Record<string, string>);
    };
    await waitFor(
      async () => (await result('probe-svc')) !== null && (await result('probe2-svc')) !== null,
      60_000,
      'both probes to report',
    );
    const r1 = await result('probe-svc');
    assert.equal(r1?.approved, 'ok:0');
    for (const key of ['extraArg', 'outside', 'shell', 'semicolon']) assert.equal(r1?.[key], 'denied:SUDO_DENIED', key);
    assert.match(r1?.privilegedService ?? '', /^denied:(PERMISSION_DENIED|UNAUTHORIZED)$/);
    assert.equal((await result('probe2-svc'))?.borrowed, 'denied:SUDO_DENIED');
    for (const name of ['probe', 'probe2']) assert.equal((await adi(['plugin', 'uninstall', name], t.env)).code, 0);
  });
});
