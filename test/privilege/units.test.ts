// The identity and run-as rules without real users (any user may run these): how a service is launched
// in each mode, the plugin socket's address and directory checks, tokens on the two sockets, and the
// refusal of privileged plugin definitions.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { SeparationStatus, UserEntry } from '../../src/system/privilege.js';
import { SECURE_PATH } from '../../src/system/resolve.js';
import { resolvePaths, resolvePluginEndpoint } from '../../src/core/paths.js';
import { Authenticator } from '../../src/server/auth.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { bindPluginSocket, closePluginSocket, preparePluginDir } from '../../src/server/plugin-socket.js';
import { validateServiceConfig, type NormalizedConfig } from '../../src/protocol/config-schema.js';
import { PLUGIN_PIDS_DEFAULT, prlimitPath } from '../../src/system/rlimits.js';
import { SEPARATED_CWD, buildLaunch, pluginOf } from '../../src/services/launch.js';
import { SERVICE_ID_ENV } from '../../src/system/process-group.js';
import { loadSources, type ServiceSource } from '../../src/services/registry.js';
import { planCommand, type ServicePrivilege } from '../../src/system/run-as.js';
import { cleanEnv } from '../../src/system/privilege.js';

const ACTIVE: SeparationStatus = { active: true, reason: 'test' };
const INACTIVE: SeparationStatus = { active: false, reason: 'users adi and adi-root do not exist' };

function config(raw: Record<string, unknown>): NormalizedConfig {
  const r = validateServiceConfig(raw);
  assert.ok(r.config !== null, JSON.stringify(r.errors));
  return r.config;
}

function privilege(over: Partial<ServicePrivilege> = {}): ServicePrivilege & { audited: unknown[] } {
  const audited: unknown[] = [];
  const entry: UserEntry = { name: 'adi', uid: 4242, gid: 4343, home: '/nonexistent', shell: '/usr/sbin/nologin' };
  return {
    separation: () => ACTIVE,
    adiUser: 'adi',
    adiRootUser: 'adi-root',
    adiEntry: () => entry,
    isRoot: true,
    selfUser: 'alice',
    sudo: '/usr/bin/sudo',
    kill: '/usr/bin/kill',
    socketFor: (kind) =>
      kind === 'admin' ? '/home/alice/.local/share/adi/daemon.sock' : '/tmp/adi-daemon-1000/plugins-x.sock',
    pluginToken: (plugin) => `token-of-${plugin}`,
    auditPrivileged: (e) => audited.push(e),
    audited,
    ...over,
  };
}

const adminEnv = {
  PATH: '/home/alice/bin:/usr/bin',
  HOME: '/home/alice',
  SSH_AUTH_SOCK: '/tmp/agent',
  LD_PRELOAD: '/x.so',
  ADI_DAEMON_TOKEN: 'admin-secret',
};
const base = { baseEnv: adminEnv, home: '/home/alice', runId: 'run1' };
const pluginDef = { source: 'plugin' as const, plugin: 'net' };
const fileDef = { source: 'file' as const };

void describe('buildLaunch with privilege separation', () => {
  void it('without separation nothing changes: the daemon user, its env and home; a plugin still gets its token', () => {
    const p = privilege({ separation: () => INACTIVE });
    const l = buildLaunch('svc', config({ command: '/bin/x', args: ['a'] }), { ...base, def: fileDef, privilege: p });
    assert.equal(l.runAs.mode, 'self');
    assert.equal(l.file, '/bin/x');
    assert.equal(l.cwd, '/home/alice');
    assert.equal(l.env.HOME, '/home/alice');
    assert.equal(l.env.ADI_DAEMON_TOKEN, 'admin-secret', 'the daemon env, as before');
    assert.equal(l.options.uid, undefined);
    const pl = buildLaunch('net', config({ command: '/bin/x' }), { ...base, def: pluginDef, privilege: p });
    assert.equal(pl.env.ADI_DAEMON_TOKEN, 'token-of-net');
    assert.equal(pl.env.ADI_DAEMON_SOCKET, '/home/alice/.local/share/adi/daemon.sock', 'the admin socket: same user');
  });

  void it('a root daemon runs services as ADI_USER by uid/gid, in /, with an environment of their own', () => {
    const l = buildLaunch('svc', config({ command: '/bin/x', args: ['a'], env: { PORT: '7' } }), {
      ...base,
      def: fileDef,
      privilege: privilege(),
    });
    assert.equal(l.runAs.mode, 'uid');
    assert.deepEqual([l.file, ...l.args], ['/bin/x', 'a']);
    assert.equal(l.options.uid, 4242);
    assert.equal(l.options.gid, 4343);
    assert.equal(l.cwd, SEPARATED_CWD);
    assert.deepEqual(
      Object.keys(l.env).sort(),
      [
        'ADI_DAEMON_SOCKET',
        'ADI_SERVICE_NAME',
        SERVICE_ID_ENV,
        'HOME',
        'LANG',
        'LOGNAME',
        'PATH',
        'PORT',
        'USER',
      ].sort(),
    );
    assert.equal(l.env.PATH, SECURE_PATH);
    assert.equal(l.env.HOME, '/');
    assert.equal(l.env.USER, 'adi');
    assert.equal(l.env.ADI_DAEMON_SOCKET, '/tmp/adi-daemon-1000/plugins-x.sock');
    assert.equal(l.env.ADI_DAEMON_TOKEN, undefined, "an admin's service runs as the plugin user: it gets no token");
    assert.equal(l.signalVia, null, 'root signals anyone itself');
  });

  void it("a plugin's service gets its own token, set after its env table (which cannot replace it)", () => {
    const c = config({
      command: '/bin/x',
      env: { ADI_DAEMON_TOKEN: 'forged', ADI_DAEMON_SOCKET: '/elsewhere', [SERVICE_ID_ENV]: 'forged' },
    });
    const l = buildLaunch('net', c, { ...base, def: pluginDef, privilege: privilege() });
    assert.equal(l.plugin, 'net');
    assert.equal(l.env.ADI_DAEMON_TOKEN, 'token-of-net');
    assert.equal(l.env.ADI_DAEMON_SOCKET, '/tmp/adi-daemon-1000/plugins-x.sock');
    assert.equal(l.env[SERVICE_ID_ENV], 'run1');
    assert.equal(
      pluginOf({ source: 'plugin' }, 'svc'),
      'svc',
      'a source without plugin names falls back to the service name',
    );
  });

  void it('a non-root admin daemon wraps the service in sudo -u ADI_USER, carrying the env by name only', () => {
    const l = buildLaunch('net', config({ command: '/bin/x', args: ['a b'], env: { PORT: '7' } }), {
      ...base,
      def: pluginDef,
      privilege: privilege({ isRoot: false }),
    });
    assert.equal(l.runAs.mode, 'sudo');
    assert.equal(l.file, '/usr/bin/sudo');
    const sep = l.args.indexOf('--');
    // A plugin's service: its process limit is set inside the sudo chain, by prlimit.
    assert.deepEqual(l.args.slice(sep), [
      '--',
      prlimitPath('test'),
      `--nproc=${PLUGIN_PIDS_DEFAULT}:${PLUGIN_PIDS_DEFAULT}`,
      '--',
      '/bin/x',
      'a b',
    ]);
    assert.deepEqual(l.args.slice(0, 1), ['-n']);
    assert.deepEqual(l.args.slice(sep - 2, sep), ['-u', 'adi']);
    const preserve = l.args.find((a) => a.startsWith('--preserve-env='));
    assert.ok(preserve !== undefined);
    const keys = preserve.slice('--preserve-env='.length).split(',');
    assert.ok(keys.includes('ADI_DAEMON_TOKEN') && keys.includes(SERVICE_ID_ENV) && keys.includes('PORT'));
    assert.ok(!l.args.some((a) => a.includes('token-of-net')), 'the token never appears on a command line');
    assert.equal(l.options.uid, undefined);
    assert.deepEqual(l.command, ['/bin/x', 'a b']);
    assert.ok(l.signalVia !== null, 'stopping needs sudo too');
    assert.deepEqual(l.wrap('/bin/probe', ['-q']).args.slice(-3), ['--', '/bin/probe', '-q']);
  });

  void it("an admin's privileged service goes through ADI_ROOT_USER's sudo with a resolved command", () => {
    const l = buildLaunch('fw', config({ command: 'id', args: ['-u'], privileged: true }), {
      ...base,
      def: fileDef,
      privilege: privilege(),
    });
    assert.equal(l.runAs.mode, 'root-chain');
    assert.equal(l.runAs.user, 'root');
    const a = [l.file, ...l.args];
    const first = a.indexOf('--');
    assert.deepEqual(a.slice(first - 2, first + 2), ['-u', 'adi-root', '--', '/usr/bin/sudo']);
    assert.equal(a.at(-2)?.endsWith('/id'), true, 'resolved through the secure PATH');
    assert.equal(a.at(-1), '-u');
    assert.equal(l.env.USER, 'root');
    assert.equal(l.env.ADI_DAEMON_TOKEN, undefined);
  });

  void it("refuses: a plugin's privileged service, privileged without separation, ready_notify through sudo", () => {
    assert.throws(
      () =>
        buildLaunch('net', config({ command: '/bin/x', privileged: true }), {
          ...base,
          def: pluginDef,
          privilege: privilege(),
        }),
      /can never be privileged/,
    );
    assert.throws(
      () =>
        buildLaunch('fw', config({ command: '/bin/x', privileged: true }), {
          ...base,
          def: fileDef,
          privilege: privilege({ separation: () => INACTIVE }),
        }),
      /privilege separation is not set up.*sudo adi daemon setup/,
    );
    assert.throws(
      () =>
        buildLaunch('s', config({ command: '/bin/x', ready_notify: true }), {
          ...base,
          def: fileDef,
          privilege: privilege({ isRoot: false }),
        }),
      /ready_notify.*readiness probe/,
    );
    assert.throws(
      () =>
        buildLaunch('s', config({ command: '/bin/x', env: { 'A,B': '1' } }), {
          ...base,
          def: fileDef,
          privilege: privilege({ isRoot: false }),
        }),
      /contains ','/,
    );
    assert.throws(
      () =>
        buildLaunch('s', config({ command: '/bin/x' }), {
          ...base,
          def: fileDef,
          privilege: privilege({ adiEntry: () => null }),
        }),
      /no longer exists/,
    );
  });
});

// The exact argv, user and environment of every way a command is started, written out: the planner is
// shared by Run, SudoRun and services, and a change to who runs what must show up here.
void describe('the run-as planner, argv by argv', () => {
  const PRLIMIT = prlimitPath('test');
  const NPROC = `--nproc=${PLUGIN_PIDS_DEFAULT}:${PLUGIN_PIDS_DEFAULT}`;
  const SUDO = '/usr/bin/sudo';
  const KILL = '/usr/bin/kill';
  const argvOf = (a: { file: string; args: string[] }): string[] => [a.file, ...a.args];
  const userEnv = cleanEnv({ USER: 'adi', LOGNAME: 'adi' });

  void it('Run without separation: the daemon user, a clean environment, no limits, no sudo', () => {
    for (const plugin of [false, true]) {
      const c = planCommand(privilege({ separation: () => INACTIVE }), false, plugin, '/bin/echo', ['a b']);
      assert.deepEqual(
        [c.mode, c.as, argvOf(c.argv), c.uid, c.gid, c.groupKiller],
        ['self', 'alice', ['/bin/echo', 'a b'], undefined, undefined, undefined],
      );
      assert.deepEqual(c.env, cleanEnv());
    }
  });

  void it('Run from a root daemon: ADI_USER by uid/gid; a plugin under prlimit', () => {
    const admin = planCommand(privilege(), false, false, '/bin/echo', ['a b']);
    assert.deepEqual(
      [admin.mode, admin.as, argvOf(admin.argv), admin.uid, admin.gid, admin.groupKiller],
      ['uid', 'adi', ['/bin/echo', 'a b'], 4242, 4343, undefined],
    );
    assert.deepEqual(admin.env, userEnv);
    const plugin = planCommand(privilege(), false, true, '/bin/echo', ['a b']);
    assert.deepEqual(argvOf(plugin.argv), [PRLIMIT, NPROC, '--', '/bin/echo', 'a b']);
    assert.deepEqual([plugin.uid, plugin.gid], [4242, 4343]);
  });

  void it('Run from an admin daemon: sudo -u ADI_USER with prlimit inside, killed through the same sudo', () => {
    const admin = planCommand(privilege({ isRoot: false }), false, false, '/bin/echo', ['a b']);
    assert.deepEqual(argvOf(admin.argv), [SUDO, '-n', '-u', 'adi', '--', '/bin/echo', 'a b']);
    const c = planCommand(privilege({ isRoot: false }), false, true, '/bin/echo', ['a b']);
    assert.deepEqual([c.mode, c.as, c.uid, c.gid], ['sudo', 'adi', undefined, undefined]);
    assert.deepEqual(argvOf(c.argv), [SUDO, '-n', '-u', 'adi', '--', PRLIMIT, NPROC, '--', '/bin/echo', 'a b']);
    assert.deepEqual(c.env, cleanEnv(), 'sudo sets USER and LOGNAME itself');
    assert.deepEqual(c.groupKiller && argvOf(c.groupKiller(77)), [
      SUDO,
      '-n',
      '-u',
      'adi',
      '--',
      KILL,
      '-KILL',
      '--',
      '-77',
    ]);
    assert.equal(
      planCommand(privilege({ isRoot: false, kill: null }), false, true, '/bin/echo', []).groupKiller,
      undefined,
    );
  });

  void it('SudoRun: the ADI_ROOT_USER chain from any daemon, never under prlimit; killed through the chain when not root', () => {
    for (const plugin of [false, true]) {
      const root = planCommand(privilege(), true, plugin, '/usr/bin/id', ['-u']);
      assert.deepEqual(
        [root.mode, root.as, root.uid, root.gid, root.groupKiller],
        ['root-chain', 'root', undefined, undefined, undefined],
      );
      assert.deepEqual(argvOf(root.argv), [SUDO, '-n', '-u', 'adi-root', '--', SUDO, '-n', '--', '/usr/bin/id', '-u']);
      assert.deepEqual(root.env, cleanEnv());
      const admin = planCommand(privilege({ isRoot: false }), true, plugin, '/usr/bin/id', ['-u']);
      assert.deepEqual(argvOf(admin.argv), argvOf(root.argv));
      assert.deepEqual(admin.groupKiller && argvOf(admin.groupKiller(77)), [
        SUDO,
        '-n',
        '-u',
        'adi-root',
        '--',
        SUDO,
        '-n',
        '--',
        KILL,
        '-KILL',
        '--',
        '-77',
      ]);
    }
  });

  void it('refuses what cannot run as required, saying what to do', () => {
    assert.throws(
      () => planCommand(privilege({ separation: () => INACTIVE }), true, false, '/usr/bin/id', []),
      /privilege separation is not set up.*sudo adi daemon setup/,
    );
    assert.throws(
      () => planCommand(privilege({ isRoot: false, sudo: null }), false, false, '/bin/echo', []),
      /sudo is not installed, so commands cannot run as adi; install it/,
    );
    assert.throws(
      () => planCommand(privilege({ adiEntry: () => null }), false, false, '/bin/echo', []),
      /The plugin user adi no longer exists/,
    );
  });

  void it('services: sudo and root-chain argv written out, with the preserved keys and the killers', () => {
    const l = buildLaunch('net', config({ command: '/bin/x', args: ['a b'], env: { PORT: '7' } }), {
      ...base,
      def: pluginDef,
      privilege: privilege({ isRoot: false }),
    });
    const keys =
      '--preserve-env=PATH,LANG,HOME,PORT,ADI_DAEMON_SOCKET,ADI_DAEMON_TOKEN,ADI_SERVICE_ID,ADI_SERVICE_NAME';
    assert.deepEqual([l.file, ...l.args], [SUDO, '-n', keys, '-u', 'adi', '--', PRLIMIT, NPROC, '--', '/bin/x', 'a b']);
    assert.deepEqual(l.runAs.killer && argvOf(l.runAs.killer(99, 'SIGTERM')), [
      SUDO,
      '-n',
      '-u',
      'adi',
      '--',
      KILL,
      '-TERM',
      '--',
      '-99',
    ]);
    const r = buildLaunch(
      'fw',
      config({ command: '/usr/bin/id', args: ['-u'], privileged: true, memory_max: 16777216 }),
      { ...base, def: fileDef, privilege: privilege({ isRoot: false }) },
    );
    const rootKeys = '--preserve-env=PATH,LANG,HOME,ADI_DAEMON_SOCKET,ADI_SERVICE_ID,ADI_SERVICE_NAME';
    assert.deepEqual(
      [r.file, ...r.args],
      [
        SUDO,
        '-n',
        rootKeys,
        '-u',
        'adi-root',
        '--',
        SUDO,
        '-n',
        rootKeys,
        '--',
        PRLIMIT,
        '--data=16777216:16777216',
        '--',
        '/usr/bin/id',
        '-u',
      ],
    );
    assert.deepEqual(r.runAs.killer && argvOf(r.runAs.killer(99, 'SIGKILL')), [
      SUDO,
      '-n',
      '-u',
      'adi-root',
      '--',
      SUDO,
      '-n',
      '--',
      KILL,
      '-KILL',
      '--',
      '-99',
    ]);
  });
});

void describe('definitions', () => {
  void it("a plugin's privileged definition is refused when loaded, naming the field; the admin's is kept", async () => {
    const source = (kind: 'file' | 'plugin'): ServiceSource => ({
      kind,
      load: () =>
        Promise.resolve({
          definitions: [
            {
              name: `${kind}-root`,
              source: kind,
              config: config({ command: '/bin/x', privileged: true }),
              auto_start: false,
              origin: `${kind} origin`,
              ...(kind === 'plugin' ? { plugin: 'p' } : {}),
            },
          ],
          errors: [],
        }),
    });
    const snap = await loadSources([source('file'), source('plugin')]);
    assert.deepEqual([...snap.definitions.keys()], ['file-root']);
    assert.equal(snap.errors.length, 1);
    assert.match(
      snap.errors[0] ?? '',
      /plugin origin: service "plugin-root": field "privileged": a plugin's service can never be privileged/,
    );
  });
});

void describe('tokens', () => {
  void it('the admin token is not accepted on the plugin socket; plugin tokens last until revoked', () => {
    const auth = new Authenticator('admin-token');
    const t = auth.pluginToken('net');
    assert.equal(auth.pluginToken('net'), t, 'stable for the daemon lifetime');
    assert.notEqual(auth.pluginToken('other'), t);
    assert.equal(auth.identify('admin-token').kind, 'admin');
    let warned = 0;
    assert.equal(auth.identifyPlugin('admin-token', () => warned++).kind, 'anonymous');
    assert.equal(warned, 1);
    assert.deepEqual(auth.identifyPlugin(t), { kind: 'plugin', plugin: 'net', label: 'plugin:net' });
    assert.equal(auth.identifyPlugin(null).kind, 'anonymous');
    assert.equal(auth.identifyPlugin('nonsense').kind, 'anonymous');
    assert.deepEqual(auth.revokeExcept(new Set(['other'])), ['net']);
    assert.equal(auth.identify(t).kind, 'anonymous');
  });
});

void describe('the plugin socket', () => {
  void it('lives outside the data dir, per data dir, in /run for root and /tmp otherwise; overridable', () => {
    const a = resolvePluginEndpoint('/home/a/.local/share/adi', { env: {}, platform: 'linux', uid: 1000 });
    const b = resolvePluginEndpoint('/home/b/.local/share/adi', { env: {}, platform: 'linux', uid: 1000 });
    assert.match(a.file ?? '', /^\/tmp\/adi-daemon-1000\/plugins-[0-9a-f]{12}\.sock$/);
    assert.notEqual(a.file, b.file);
    assert.match(
      resolvePluginEndpoint('/root/x', { env: {}, platform: 'linux', uid: 0 }).file ?? '',
      /^\/run\/adi-daemon-0\//,
    );
    assert.equal(
      resolvePluginEndpoint('/d', { env: { ADI_DAEMON_PLUGIN_SOCKET: '/srv/p.sock' }, platform: 'linux', uid: 5 }).file,
      '/srv/p.sock',
    );
    assert.equal(
      resolvePluginEndpoint('/d', { env: { ADI_DAEMON_PLUGIN_SOCKET: '@adi-plugins' }, platform: 'linux', uid: 5 })
        .kind,
      'abstract',
    );
    assert.throws(
      () =>
        resolvePluginEndpoint('/d', { env: { ADI_DAEMON_PLUGIN_SOCKET: `/${'x'.repeat(200)}` }, platform: 'linux' }),
      /ADI_DAEMON_PLUGIN_SOCKET/,
    );
  });

  void it('its directory must be ours, a real directory, and writable by nobody else', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-psock-'));
    try {
      const dir = path.join(root, 'd');
      preparePluginDir(dir);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o711);
      fs.chmodSync(dir, 0o700);
      preparePluginDir(dir);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o711, 'tightened or loosened to exactly 0711');
      fs.chmodSync(dir, 0o777);
      assert.throws(() => preparePluginDir(dir), /writable by other users/);
      const link = path.join(root, 'link');
      fs.symlinkSync(dir, link);
      assert.throws(() => preparePluginDir(link), /is not a directory/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  void it('is bound 0660 with the plugin group when it may be given that group, else 0666', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-psock-'));
    try {
      const file = path.join(root, 'd', 'p.sock');
      const endpoint = resolvePaths({ env: { ADI_DAEMON_SOCKET: file }, home: root, platform: 'linux' }).socket;
      const gid = process.getgid?.() ?? 0;
      const log = new MemoryLogger();
      const server = await bindPluginSocket({ endpoint, gid, log });
      assert.equal(fs.statSync(file).mode & 0o777, 0o660);
      assert.equal(fs.statSync(file).gid, gid);
      await new Promise<void>((resolve, reject) => {
        const s = net.createConnection(file, () => {
          s.destroy();
          resolve();
        });
        s.once('error', reject);
      });
      closePluginSocket(server, endpoint);
      assert.equal(fs.existsSync(file), false);
      if (process.getuid?.() !== 0) {
        // A group this user is not in: chown fails, the socket is opened to all (the token decides).
        const other = await bindPluginSocket({ endpoint, gid: 0, log });
        assert.equal(fs.statSync(file).mode & 0o777, 0o666);
        assert.match(log.lines.join('\n'), /a connection still needs a plugin token/);
        closePluginSocket(other, endpoint);
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
