// Limits on what plugins start, and the audit of anonymous attempts on the plugin socket, for real: a
// root daemon with privilege separation (its own users adi-t12l / adi-t12l-root, not another test
// file's, so the files may run in parallel). Needs root (CI runs as root); skipped otherwise with the
// reason printed.
//
// The fork bomb is a binary tree of depth 10 whose leaves sleep: about 2,047 processes with no limit
// (what this test would see if the limit were removed: bounded, so a broken defence cannot take the
// machine down), at most its pids_max with it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { AdiError } from '../../src/core/errors.js';
import { auditFile } from '../../src/executor/audit.js';
import { lookupUser } from '../../src/system/privilege.js';
import { resolveCommand } from '../../src/system/resolve.js';
import { resolvePluginEndpoint } from '../../src/core/paths.js';
import { PLUGIN_PIDS_DEFAULT } from '../../src/system/rlimits.js';
import { readAudit } from '../executor/util.js';
import { adi, ROOT, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { environOf, killProcessesOf, reachableByOthers, sh, startPluginDaemon } from './util.js';
import { pidsOfUids } from '../helpers/proc.js';

const ADI = 'adi-t12l';
const ADI_ROOT = 'adi-t12l-root';
const USERS = { ADI_USER: ADI, ADI_ROOT_USER: ADI_ROOT };
const BOMB_PIDS = 64;

const IS_ROOT = process.getuid?.() === 0;
let skip: string | false = IS_ROOT && process.platform === 'linux' ? false : 'needs root on Linux (CI runs it as root)';
if (skip === false && !reachableByOthers(process.execPath)) skip = `the plugin user cannot run ${process.execPath}`;
if (skip === false) {
  try {
    resolveCommand('sudo');
    resolveCommand('useradd');
    resolveCommand('prlimit');
  } catch {
    skip = 'sudo, useradd and prlimit are needed (the sudo, passwd and util-linux packages)';
  }
}
if (skip !== false) console.log(`# plugin limit tests skipped: ${skip}`);

let h: TempHome;
let admin: DaemonClient;
let pluginSock = '';

function removeSetup(): void {
  killProcessesOf([ADI, ADI_ROOT]);
  const r = sh(process.execPath, [path.join(ROOT, 'bin', 'adi.js'), 'daemon', 'setup', '--remove'], {
    PATH: process.env.PATH,
    ...USERS,
  });
  if (r.status !== 0) throw new Error(`setup --remove: ${r.out}`);
}

/** Live processes of `uid` (zombies excluded), found in /proc. */
function processesOf(uid: number): number[] {
  return pidsOfUids(new Set([uid]));
}

before(async () => {
  if (skip !== false) return;
  removeSetup(); // a crashed earlier run's
  const r = await adi(['daemon', 'setup'], { PATH: process.env.PATH, ...USERS });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  h = tempHome(USERS);
  const bomb = 'f() { [ "$1" -gt 0 ] || exec sleep 600; f $(($1 - 1)) & f $(($1 - 1)) & wait; }; f 10';
  admin = await startPluginDaemon(
    h.home,
    h.env,
    [
      {
        name: 'bomb',
        plugin: 'bomb',
        config: { command: '/bin/sh', args: ['-c', bomb], pids_max: BOMB_PIDS, restart_on_failure: false },
      },
      { name: 'quiet', plugin: 'quiet', config: { command: '/bin/sleep', args: ['600'], restart_on_failure: false } },
    ],
    ['bomb', 'quiet'],
  );
  pluginSock = resolvePluginEndpoint(h.paths.dataDir, { env: h.env }).file ?? '';
});

after(async () => {
  if (skip !== false) return;
  admin?.close();
  await h?.cleanup();
  removeSetup();
});

test(
  'a fork bomb in a plugin service stays under its process limit; the daemon answers; stop ends it',
  { skip },
  async () => {
    const user = lookupUser(ADI);
    assert.ok(user !== null);
    await admin.startService('bomb');
    // It has hit its limit once its shells report failed forks (or, without a limit, gone past it).
    await waitFor(
      async () =>
        processesOf(user.uid).length > BOMB_PIDS ||
        (await admin.serviceLogs('bomb', { lines: 50 })).some((l) => /Cannot fork/.test(l)),
      60_000,
      'the bomb to reach its limit',
    );
    // Shells whose fork failed give up, so the count drifts down afterwards: only its maximum is asserted.
    let most = 0;
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, processesOf(user.uid).length);
      // The daemon answers meanwhile, on both sockets.
      assert.ok((await admin.ping()).pid > 0);
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`# fork bomb: at most ${most} processes of ${ADI} (pids_max ${BOMB_PIDS}; about 2047 without it)`);
    assert.ok(most <= BOMB_PIDS, `${most} processes of ${ADI}`);
    const anon = new DaemonClient({ env: { ADI_DAEMON_SOCKET: pluginSock, HOME: '/nonexistent' }, token: null });
    try {
      assert.ok((await anon.ping()).pid > 0);
    } finally {
      anon.close();
    }
    const stopped = await adi(['daemon', 'stop', 'bomb'], h.env, { timeoutMs: 60_000 });
    assert.equal(stopped.code, 0, stopped.stdout + stopped.stderr);
    await waitFor(() => processesOf(user.uid).length === 0, 20_000, `every process of ${ADI} to be gone`);
  },
);

test(
  "a plugin's service and its Run commands carry the process limit; the admin's Run does not",
  { skip },
  async () => {
    await admin.startService('quiet');
    const info = (await admin.listServices()).find((s) => s.name === 'quiet');
    assert.ok(info?.pid != null);
    // prlimit sets the limit on itself, then execs: the pid exists a moment before its limit does.
    const limited = new RegExp(`Max processes\\s+${PLUGIN_PIDS_DEFAULT}\\s+${PLUGIN_PIDS_DEFAULT}`);
    await waitFor(
      () => limited.test(fs.readFileSync(`/proc/${info.pid}/limits`, 'utf8')),
      10_000,
      'the service to run under its limit',
    );
    const token = environOf(info.pid).ADI_DAEMON_TOKEN ?? '';
    assert.match(token, /^[0-9a-f]{64}$/);
    const plugin = new DaemonClient({ env: { ADI_DAEMON_SOCKET: pluginSock, HOME: '/nonexistent' }, token });
    try {
      const out = Buffer.from((await plugin.run('/bin/cat', ['/proc/self/limits'])).stdout).toString();
      assert.match(out, new RegExp(`Max processes\\s+${PLUGIN_PIDS_DEFAULT}\\s+${PLUGIN_PIDS_DEFAULT}`));
    } finally {
      plugin.close();
    }
    const adminOut = Buffer.from((await admin.run('/bin/cat', ['/proc/self/limits'])).stdout).toString();
    assert.doesNotMatch(adminOut, new RegExp(`Max processes\\s+${PLUGIN_PIDS_DEFAULT}\\s`));
    await admin.stopService('quiet');
  },
);

test('an anonymous SudoRun on the plugin socket is refused and appears in the audit log', { skip }, async () => {
  const before = readAudit(auditFile(h.paths)).length;
  const anon = new DaemonClient({ env: { ADI_DAEMON_SOCKET: pluginSock, HOME: '/nonexistent' }, token: null });
  try {
    const e = await anon.sudoRun('/usr/bin/id', ['-u'], 'anonymous on the plugin socket').then(
      () => null,
      (err: unknown) => err,
    );
    assert.ok(e instanceof AdiError && e.code === 'UNAUTHORIZED', String(e));
  } finally {
    anon.close();
  }
  const lines = readAudit(auditFile(h.paths)).slice(before);
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.equal(lines[0]?.identity, 'anonymous');
  assert.equal(lines[0]?.action, 'sudo_denied');
  assert.deepEqual(lines[0]?.argv, ['/usr/bin/id', '-u']);
  assert.equal(lines[0]?.reason, 'anonymous on the plugin socket');
});
