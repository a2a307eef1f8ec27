// Issue 4 in the real daemon: Run / SudoRun on the socket, services as the plugin user, privileged
// services, plugin identities on the plugin socket, and who may do what. Real daemons, real users
// (adi-t4 / adi-t4-root / adi-t4-admin: not the executor tests' names, so the files may run in
// parallel), real sudo. Everything after the first test needs root (CI runs as root) and is skipped
// otherwise with the reason printed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { AdiError } from '../../src/core/errors.js';
import { auditFile } from '../../src/executor/audit.js';
import { lookupUser } from '../../src/system/privilege.js';
import { resolveCommand } from '../../src/system/resolve.js';
import { resolvePluginEndpoint } from '../../src/core/paths.js';
import { readAudit, tempDir } from '../executor/util.js';
import { approveInstalled } from '../plugins/util.js';
import { adi, alive, killDaemons, ROOT, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import {
  LAUNCHER,
  environOf,
  killProcessesOf,
  pidsWithMarker,
  pluginRuntime,
  probeReport,
  reachableByOthers,
  sh,
  startPluginDaemon,
  type PluginDef,
} from './util.js';

const ADI = 'adi-t4';
const ADI_ROOT = 'adi-t4-root';
const ADMIN_USER = 'adi-t4-admin';
const USERS = { ADI_USER: ADI, ADI_ROOT_USER: ADI_ROOT };

const IS_ROOT = process.getuid?.() === 0;
let rootSkip: string | false = IS_ROOT ? false : 'needs root (CI runs it as root)';
if (rootSkip === false && !reachableByOthers(process.execPath))
  rootSkip = `the plugin user cannot run ${process.execPath}`;
if (rootSkip === false) {
  try {
    resolveCommand('sudo');
    resolveCommand('useradd');
  } catch {
    rootSkip = 'sudo and useradd are needed (install the sudo and passwd packages)';
  }
}
// The non-root admin daemon runs the compiled tree itself, as that user.
const adminSkip =
  rootSkip !== false
    ? rootSkip
    : reachableByOthers(LAUNCHER)
      ? false
      : `the checkout (${ROOT}) is not readable by other users`;
if (rootSkip !== false) console.log(`# privilege identity tests skipped: ${rootSkip}`);
else if (adminSkip !== false) console.log(`# non-root admin daemon test skipped: ${adminSkip}`);

const homes: TempHome[] = [];
const dirs: string[] = [];
const ownUsers: string[] = [];
const cleanups: Array<() => void> = [];
let shared = '';
let runtime = { probe: '', client: '' };
let evilDir = '';

function setupCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return adi(['daemon', 'setup', ...args], { PATH: process.env.PATH, ...USERS });
}

function removeSetup(): void {
  if (!IS_ROOT) return;
  killProcessesOf([ADI, ADI_ROOT]);
  const r = sh(process.execPath, [path.join(ROOT, 'bin', 'adi.js'), 'daemon', 'setup', '--remove'], {
    PATH: process.env.PATH,
    ...USERS,
  });
  if (r.status !== 0) throw new Error(`setup --remove: ${r.out}`);
}

before(() => {
  if (rootSkip !== false) return;
  // A crashed earlier run may have left its setup: undo it (setup's own record says what is ours).
  removeSetup();
  shared = tempDir('adi-t4-');
  fs.chmodSync(shared, 0o755);
  dirs.push(shared);
  runtime = pluginRuntime(shared);
  // A PATH entry a plugin could plant: `id` there must never be what runs.
  evilDir = path.join(shared, 'evil');
  fs.mkdirSync(evilDir, { mode: 0o755 });
  fs.writeFileSync(path.join(evilDir, 'id'), '#!/bin/sh\necho hijacked\n', { mode: 0o755 });
});

after(async () => {
  const errors: unknown[] = [];
  for (const h of homes) {
    try {
      await h.cleanup();
    } catch (err) {
      errors.push(err);
    }
  }
  for (const c of cleanups) c();
  if (IS_ROOT && rootSkip === false) {
    try {
      removeSetup();
    } catch (err) {
      errors.push(err);
    }
    killProcessesOf(ownUsers);
    for (const u of ownUsers) {
      if (lookupUser(u) !== null) {
        const r = sh(resolveCommand('userdel'), [u]);
        if (r.status !== 0) errors.push(new Error(`userdel ${u}: ${r.out}`));
      }
    }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  if (errors.length > 0) throw errors[0];
});

const text = (b: Uint8Array): string => Buffer.from(b).toString().trim();

async function errorOf(p: Promise<unknown>): Promise<AdiError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(e instanceof AdiError, `expected an AdiError, got ${String(e)}`);
  return e;
}

void test('without setup: Run runs as the current user and SudoRun names the setup command', async () => {
  // A plugin user that does not exist: separation is inactive whoever runs the test.
  const h = tempHome({ ADI_USER: 'adi-t4-none', ADI_ROOT_USER: 'adi-t4-none-root' });
  homes.push(h);
  const started = await adi(['daemon', 'start'], h.env);
  assert.equal(started.code, 0, started.stderr);
  const client = new DaemonClient({ env: h.env });
  try {
    assert.equal((await client.ping()).separation, false);
    const r = await client.run('/usr/bin/id', ['-un']);
    assert.equal(text(r.stdout), sh('/usr/bin/id', ['-un']).out.trim());
    const denied = await errorOf(client.sudoRun('/usr/bin/id', ['-u'], 'test'));
    assert.equal(denied.code, 'SUDO_DENIED');
    assert.match(denied.message, /sudo adi daemon setup/);
    const audit = readAudit(auditFile(h.paths));
    assert.deepEqual(
      audit.map((l) => [l.identity, l.action]),
      [
        ['admin', 'run'],
        ['admin', 'sudo_denied'],
      ],
    );
    // No plugin socket without separation.
    const plugin = resolvePluginEndpoint(h.paths.dataDir, { env: h.env });
    assert.equal(fs.existsSync(plugin.file ?? ''), false);
    const status = await adi(['daemon', 'status', '--json'], h.env);
    assert.equal((JSON.parse(status.stdout) as { separation: boolean }).separation, false);
  } finally {
    client.close();
    await adi(['daemon', 'stop'], h.env);
  }
});

void test(
  'adi daemon setup (as root) creates the test users; a running daemon sees it at reload',
  { skip: rootSkip },
  async () => {
    const h = tempHome(USERS);
    homes.push(h);
    const started = await adi(['daemon', 'start'], h.env);
    assert.equal(started.code, 0, started.stderr);
    const client = new DaemonClient({ env: h.env });
    const pluginSock = resolvePluginEndpoint(h.paths.dataDir, { env: h.env }).file ?? '';
    try {
      assert.equal((await client.ping()).separation, false);
      assert.equal(fs.existsSync(pluginSock), false);
      const r = await setupCli([]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.notEqual(lookupUser(ADI), null);
      assert.notEqual(lookupUser(ADI_ROOT), null);
      const reloaded = await adi(['daemon', 'reload'], h.env);
      assert.equal(reloaded.code, 0, reloaded.stderr);
      assert.equal((await client.ping()).separation, true);
      assert.ok(fs.statSync(pluginSock).isSocket(), 'the plugin socket opens with separation');
      assert.equal(text((await client.run('/usr/bin/id', ['-un'])).stdout), ADI);
    } finally {
      client.close();
      await adi(['daemon', 'stop'], h.env);
    }
    assert.equal(fs.existsSync(pluginSock), false);
  },
);

function servicesToml(): string {
  return [
    '[whoami]',
    'command = "/bin/sh"',
    'args = ["-c", "id -un; pwd; echo HOME=$HOME; exec sleep 600"]',
    // Passes only when the probe runs as the service does: otherwise the service never leaves `starting`.
    `readiness = { command = ["/bin/sh", "-c", "test \\"$(id -un)\\" = ${ADI}"], interval_secs = 0.1 }`,
    '',
    '[rootly]',
    'command = "/bin/sh"',
    'args = ["-c", "id -u; exec sleep 601"]',
    'privileged = true',
    '',
  ].join('\n');
}

function pluginDefs(): PluginDef[] {
  return [
    {
      name: 'probe',
      plugin: 'probe',
      config: {
        command: process.execPath,
        args: [runtime.probe, runtime.client],
        // A planted PATH and LD_PRELOAD in the plugin's own environment: neither may reach a command.
        env: { PATH: `${evilDir}:/usr/bin:/bin`, LD_PRELOAD: '/nonexistent/adi-test-preload.so' },
        restart_on_failure: false,
      },
    },
    { name: 'other', plugin: 'other', config: { command: '/bin/sleep', args: ['602'], restart_on_failure: false } },
    // Refused when loaded: nothing a plugin ships can run as root.
    {
      name: 'sneaky',
      plugin: 'sneaky',
      config: { command: '/bin/sh', args: ['-c', 'id -u; sleep 603'], privileged: true },
    },
  ];
}

async function approveProbe(h: TempHome): Promise<void> {
  cleanups.push(await approveInstalled(h.paths, 'probe', ['/usr/bin/id -u', '/usr/bin/env'], true));
}

void test(
  'a root daemon with separation: services, Run, SudoRun and plugin identities',
  { skip: rootSkip },
  async () => {
    const h = tempHome(USERS);
    homes.push(h);
    assert.equal(fs.statSync(h.home).mode & 0o777, 0o700, "the admin's home is private");
    fs.mkdirSync(h.paths.configDir, { recursive: true });
    fs.writeFileSync(h.paths.servicesFile, servicesToml());
    await approveProbe(h);
    const admin = await startPluginDaemon(h.home, h.env, pluginDefs(), ['whoami', 'rootly', 'probe', 'other']);
    const adiEntry = lookupUser(ADI);
    assert.ok(adiEntry !== null);
    // The plugin user can read none of the admin's secrets: the token, the approvals, the state.
    for (const secret of [
      h.paths.tokenFile,
      path.join(h.paths.dataDir, 'approvals', 'probe.json'),
      h.paths.stateFile,
    ]) {
      const read = spawnSync('/bin/cat', [secret], { uid: adiEntry.uid, gid: adiEntry.gid, encoding: 'utf8' });
      assert.notEqual(read.status, 0, `${ADI} must not read ${secret}`);
      assert.match(read.stderr, /Permission denied/);
    }
    try {
      // --- the daemon and its sockets
      assert.equal((await admin.ping()).separation, true);
      const status = await adi(['daemon', 'status'], h.env);
      assert.match(status.stdout, /separation: active/);
      assert.equal(fs.statSync(h.paths.socket.file ?? '').mode & 0o777, 0o600, 'the admin socket stays 0600');
      const pluginSock = resolvePluginEndpoint(h.paths.dataDir, { env: h.env }).file ?? '';
      const sockSt = fs.statSync(pluginSock);
      assert.ok(sockSt.isSocket());
      assert.equal(sockSt.mode & 0o777, 0o660);
      assert.equal(sockSt.gid, adiEntry.gid, "group: the plugin user's");
      const dirSt = fs.statSync(path.dirname(pluginSock));
      assert.equal(dirSt.mode & 0o777, 0o711);
      assert.equal(dirSt.uid, 0);

      // --- the admin's Run / SudoRun
      assert.equal(text((await admin.run('/usr/bin/id', ['-un'])).stdout), ADI);
      assert.equal(text((await admin.sudoRun('/usr/bin/id', ['-u'], 'admin test')).stdout), '0');

      // --- a plugin definition can never be privileged
      const names = (await admin.listServices()).map((s) => s.name);
      assert.deepEqual(names.sort(), ['other', 'probe', 'rootly', 'whoami']);
      assert.match(
        fs.readFileSync(h.paths.logFile, 'utf8'),
        /service "sneaky": field "privileged": a plugin's service can never be privileged/,
      );

      // --- services as the plugin user, in a directory it can enter despite the 0700 home
      await admin.startService('whoami');
      await waitFor(
        async () => (await admin.serviceLogs('whoami')).some((l) => l.endsWith(' out HOME=/')),
        15_000,
        'whoami output',
      );
      const logs = await adi(['daemon', 'logs', 'whoami'], h.env);
      assert.equal(logs.code, 0, logs.stderr);
      const out = logs.stdout.split('\n');
      assert.ok(
        out.some((l) => l.trimEnd().endsWith(` ${ADI}`)),
        logs.stdout,
      );
      assert.ok(
        out.some((l) => l.trimEnd().endsWith(' /')),
        'cwd /',
      );
      assert.match(logs.stdout, /started pid \d+ as adi-t4/);
      await waitFor(
        async () => (await admin.listServices()).find((s) => s.name === 'whoami')?.state === 'running',
        15_000,
        'its readiness probe (run as the plugin user) to pass',
      );

      // --- a privileged service of the admin runs as root, audited
      await admin.startService('rootly');
      await waitFor(
        async () => (await admin.serviceLogs('rootly')).some((l) => / out 0$/.test(l)),
        15_000,
        'rootly output',
      );
      const privileged = readAudit(auditFile(h.paths)).filter((l) => l.action === 'privileged_service');
      assert.equal(privileged.length, 1);
      assert.equal(privileged[0]?.identity, 'admin');
      assert.deepEqual(
        privileged[0]?.argv.slice(0, 2),
        [resolveCommand('/bin/sh'), '-c'],
        'the resolved command, as SudoRun audits it',
      );
      assert.equal(typeof (privileged[0]?.result as { pid?: unknown } | undefined)?.pid, 'number');

      // --- the plugin service, from the inside: its DaemonClient finds the plugin socket and its token
      await admin.startService('probe');
      const report = await probeReport(admin, 'probe');
      assert.equal(report.user, ADI);
      assert.deepEqual(report.groups, [adiEntry.gid], 'no supplementary groups');
      assert.equal(report.cwd, '/');
      const env = report.env as Record<string, string>;
      assert.equal(env.HOME, '/');
      assert.equal(env.ADI_DAEMON_SOCKET, pluginSock);
      assert.equal(env.ADI_DAEMON_TOKEN, '<set>');
      assert.equal(env.ADI_USER, undefined, "not the admin's environment");
      assert.ok(!Object.values(env).some((v) => v.includes(h.home)), "nothing points into the admin's home");
      assert.deepEqual(report.ping, { ok: true });
      assert.deepEqual(report.run, { ok: ADI });
      assert.deepEqual(report.sudo, { ok: '0' }, JSON.stringify(report.sudo));
      assert.deepEqual(report.sudoBare, { ok: '0' }, 'its own PATH (with a planted id) is never used');
      assert.equal((report.sudoExtra as { error: string }).error, 'SUDO_DENIED');
      for (const key of ['runEnv', 'sudoEnv'] as const) {
        const out = (report[key] as { ok?: string }).ok;
        assert.ok(out !== undefined, `${key}: ${JSON.stringify(report[key])}`);
        assert.doesNotMatch(out, /LD_PRELOAD/, `${key}: the caller's LD_PRELOAD never reaches the command`);
        assert.doesNotMatch(out, new RegExp(evilDir), `${key}: nor its PATH`);
      }
      assert.equal((report.adhoc as { error: string }).error, 'PERMISSION_DENIED');
      assert.equal((report.shutdown as { error: string }).error, 'PERMISSION_DENIED');
      assert.equal((report.reload as { error: string }).error, 'PERMISSION_DENIED');

      // --- the same identity from here: the token read from the service's environment (root may)
      const probeInfo = (await admin.listServices()).find((s) => s.name === 'probe');
      assert.ok(probeInfo?.pid != null);
      const token = environOf(probeInfo.pid).ADI_DAEMON_TOKEN ?? '';
      assert.match(token, /^[0-9a-f]{64}$/);
      const pluginEnv = { ADI_DAEMON_SOCKET: pluginSock, HOME: '/nonexistent' };
      const asProbe = new DaemonClient({ env: pluginEnv, token });
      try {
        const auditBefore = readAudit(auditFile(h.paths)).length;
        const attempts: Array<[string, string[]]> = [
          ['/usr/bin/whoami', []],
          ['/usr/bin/id', ['-u', '-n']],
          ['/usr/bin/id', ['-u; id']],
          ['/usr/bin/id', ['-u;', 'id']],
          ['/usr/bin/id', ['-u\n-n']],
          ['./id', ['-u']],
          ['id/../id', ['-u']],
          ['/bin/sh', ['-c', '/usr/bin/id -u']],
          [path.join(evilDir, 'id'), ['-u']],
        ];
        const rules: string[] = [];
        for (const [command, args] of attempts) {
          const e = await errorOf(asProbe.sudoRun(command, args, 'hostile attempt'));
          assert.equal(e.code, 'SUDO_DENIED', `${command} ${JSON.stringify(args)}: ${e.message}`);
          rules.push(e.data?.rule ?? '?');
          if (command === '/usr/bin/whoami') {
            // For programs: the command as resolved and the patterns it was held to, beside the message.
            assert.deepEqual(e.data?.command, [command]);
            assert.ok((e.data?.patterns ?? []).includes('/usr/bin/id -u'), JSON.stringify(e.data));
          }
        }
        assert.deepEqual(
          rules,
          attempts.map(([c]) => (c.startsWith('/') ? 'not_approved' : 'bad_command')),
        );
        const denials = readAudit(auditFile(h.paths)).slice(auditBefore);
        assert.equal(denials.length, attempts.length, 'each attempt is audited');
        assert.ok(
          denials.every(
            (l) => l.identity === 'plugin:probe' && l.action === 'sudo_denied' && l.reason === 'hostile attempt',
          ),
        );
        assert.deepEqual(
          denials.map((l) => l.argv.slice(1)),
          attempts.map(([, a]) => a),
        );
        // The fixture's own attempts are in the log too.
        const all = readAudit(auditFile(h.paths)).filter((l) => l.identity === 'plugin:probe');
        assert.ok(
          all.some(
            (l) =>
              l.action === 'sudo_denied' &&
              l.argv.join(' ').endsWith('id -u -n') &&
              l.reason === 'plugin test: extra argument',
          ),
        );
        assert.ok(all.some((l) => l.action === 'sudo_run' && l.pattern === '/usr/bin/id -u' && l.as === 'root'));
        assert.ok(all.some((l) => l.action === 'run' && l.as === ADI));

        // What a plugin may and may not ask for.
        const denied = async (p: Promise<unknown>, code = 'PERMISSION_DENIED'): Promise<void> => {
          assert.equal((await errorOf(p)).code, code);
        };
        await denied(asProbe.shutdown());
        await denied(asProbe.reload());
        await denied(asProbe.startService('evil', { command: '/bin/true' }));
        await denied(asProbe.startService('evil', { command: '/bin/true', privileged: true }));
        await denied(asProbe.startService('rootly'), 'PERMISSION_DENIED');
        await denied(asProbe.stopService('whoami'));
        await denied(asProbe.restartService('other'));
        await denied(asProbe.serviceLogs('whoami'));
        await denied(asProbe.stopService('no-such-service'));
        assert.ok((await asProbe.listServices()).some((s) => s.name === 'probe'));
        assert.ok((await asProbe.serviceLogs('probe')).length > 0, 'its own logs');
        await asProbe.startService('other');
        assert.equal((await admin.listServices()).find((s) => s.name === 'other')?.state, 'running');
        assert.ok(await admin.isRunning(), 'the daemon is still up');

        // Its own service: a restart keeps the token (one per plugin for the daemon's lifetime).
        await asProbe.restartService('probe').catch(() => undefined); // the connection may end with it
        const again = await probeReport(admin, 'probe', 1);
        assert.deepEqual(again.sudo, { ok: '0' });
        const newPid = (await admin.listServices()).find((s) => s.name === 'probe')?.pid;
        assert.ok(newPid != null && newPid !== probeInfo.pid);
        assert.equal(environOf(newPid).ADI_DAEMON_TOKEN, token);
      } finally {
        asProbe.close();
      }

      // --- another plugin cannot use the first one's approvals
      const otherPid = (await admin.listServices()).find((s) => s.name === 'other')?.pid;
      assert.ok(otherPid != null);
      const otherToken = environOf(otherPid).ADI_DAEMON_TOKEN ?? '';
      assert.ok(otherToken !== '' && otherToken !== token);
      const asOther = new DaemonClient({ env: pluginEnv, token: otherToken });
      try {
        const e = await errorOf(asOther.sudoRun('/usr/bin/id', ['-u'], 'borrowing'));
        assert.equal(e.code, 'SUDO_DENIED');
        assert.match(e.message, /other/);
        await assert.rejects(asOther.stopService('probe'), (err: AdiError) => err.code === 'PERMISSION_DENIED');
      } finally {
        asOther.close();
      }

      // --- the plugin socket accepts no admin token, and without a token only Ping
      const adminToken = fs.readFileSync(h.paths.tokenFile, 'utf8').trim();
      for (const t of [adminToken, null, 'f'.repeat(64)]) {
        const c = new DaemonClient({ env: pluginEnv, token: t });
        try {
          assert.equal((await c.ping()).separation, true);
          assert.equal((await errorOf(c.listServices())).code, 'UNAUTHORIZED');
          assert.equal((await errorOf(c.run('/usr/bin/id', []))).code, 'UNAUTHORIZED');
          assert.equal((await errorOf(c.shutdown())).code, 'UNAUTHORIZED');
        } finally {
          c.close();
        }
      }
      assert.match(fs.readFileSync(h.paths.logFile, 'utf8'), /admin token on the plugin socket/);

      // --- stop: every process of every service ends, the plugin user's and root's alike
      const markers = new Set<string>();
      for (const s of await admin.listServices()) {
        if (s.pid !== null) markers.add(environOf(s.pid).ADI_SERVICE_ID ?? '');
      }
      const pids = pidsWithMarker(markers);
      assert.ok(pids.length >= 4, `processes of the four services: ${pids.join(',')}`);
      const stopped = await adi(['daemon', 'stop'], h.env);
      assert.equal(stopped.code, 0, stopped.stderr);
      await waitFor(() => pids.every((p) => !alive(p)), 20_000, 'every service process to end');
      assert.equal(fs.existsSync(pluginSock), false, 'the plugin socket is removed');
    } finally {
      admin.close();
      await killDaemons(h.home);
    }
  },
);

void test(
  'a daemon of a non-root admin: services through sudo, stopped through sudo',
  { skip: adminSkip },
  async () => {
    const add = sh(resolveCommand('useradd'), [
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      '--user-group',
      ADMIN_USER,
    ]);
    assert.equal(add.status, 0, add.out);
    ownUsers.push(ADMIN_USER);
    const adminEntry = lookupUser(ADMIN_USER);
    assert.ok(adminEntry !== null);
    const r = await setupCli(['--admin', ADMIN_USER]);
    assert.equal(r.code, 0, r.stdout + r.stderr);

    const h = tempHome(USERS);
    homes.push(h);
    fs.mkdirSync(h.paths.configDir, { recursive: true });
    fs.writeFileSync(
      h.paths.servicesFile,
      [
        '[asuser]',
        'command = "/bin/sh"',
        // A child that stays in the group and ignores SIGTERM (only a SIGKILL with the plugin user's
        // rights ends it), and the main process: both must end on stop. The child is forked before the
        // output the test waits for.
        `args = ["-c", "(trap '' TERM; exec sleep 610) & id -un; exec sleep 611"]`,
        'stop_timeout = 1',
        `readiness = { command = ["/bin/sh", "-c", "test \\"$(id -un)\\" = ${ADI}"], interval_secs = 0.1 }`,
        '',
        '[rootly]',
        'command = "/bin/sh"',
        'args = ["-c", "id -u; exec sleep 612"]',
        'privileged = true',
        '',
      ].join('\n'),
    );
    await approveProbe(h);
    sh('/bin/chown', ['-R', `${adminEntry.uid}:${adminEntry.gid}`, h.home]);
    const admin = await startPluginDaemon(h.home, h.env, pluginDefs().slice(0, 1), ['asuser', 'rootly', 'probe'], {
      uid: adminEntry.uid,
      gid: adminEntry.gid,
    });
    try {
      assert.equal((await admin.ping()).separation, true, fs.readFileSync(h.paths.logFile, 'utf8'));
      const pluginSock = resolvePluginEndpoint(h.paths.dataDir, { env: h.env, uid: adminEntry.uid }).file ?? '';
      assert.match(pluginSock, new RegExp(`^/tmp/adi-daemon-${adminEntry.uid}/`));
      const st = fs.statSync(pluginSock);
      // The admin is not in the plugin user's group: the socket is open, the token decides.
      assert.equal(st.mode & 0o777, 0o666);
      assert.equal(st.uid, adminEntry.uid);

      await admin.startService('asuser');
      await admin.startService('rootly');
      await admin.startService('probe');
      await waitFor(
        async () => (await admin.serviceLogs('asuser')).some((l) => l.endsWith(` out ${ADI}`)),
        15_000,
        'asuser output',
      );
      await waitFor(
        async () => (await admin.serviceLogs('rootly')).some((l) => / out 0$/.test(l)),
        15_000,
        'rootly output',
      );
      await waitFor(
        async () => (await admin.listServices()).find((s) => s.name === 'asuser')?.state === 'running',
        15_000,
        'the readiness probe through sudo',
      );
      const report = await probeReport(admin, 'probe');
      assert.equal(report.user, ADI);
      assert.deepEqual(report.run, { ok: ADI });
      assert.deepEqual(report.sudo, { ok: '0' }, JSON.stringify(report.sudo));
      assert.equal((report.env as Record<string, string>).ADI_DAEMON_SOCKET, pluginSock);

      // The service pid is sudo's; its processes carry the marker through --preserve-env.
      const pidsOf = async (name: string): Promise<number[]> => {
        const info = (await admin.listServices()).find((s) => s.name === name);
        assert.ok(info?.pid != null);
        const marker = environOf(info.pid).ADI_SERVICE_ID;
        assert.ok(marker !== undefined, 'the marker survives sudo');
        return pidsWithMarker(new Set([marker]));
      };
      for (const [name, least] of [
        ['asuser', 3],
        ['rootly', 2],
        ['probe', 2],
      ] as const) {
        const pids = await pidsOf(name);
        assert.ok(pids.length >= least, `${name}: sudo and the command's processes (${pids.join(',')})`);
        await admin.stopService(name);
        await waitFor(() => pids.every((p) => !alive(p)), 20_000, `${name}'s processes to end`);
        assert.equal((await admin.listServices()).find((s) => s.name === name)?.state, 'stopped');
      }
      await admin.shutdown();
      await waitFor(() => !fs.existsSync(pluginSock), 15_000, 'the plugin socket to go');
      // The daemon keeps the per-user directory (another daemon of that user may use it); the test user
      // goes, so its directory goes too (only when empty).
      fs.rmdirSync(path.dirname(pluginSock));
    } finally {
      admin.close();
      await killDaemons(h.home);
    }
  },
);
