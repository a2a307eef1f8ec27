// The plugin socket cannot be squatted silently. An abstract name (ADI_DAEMON_PLUGIN_SOCKET=@name) is
// open to every local user: another user who binds it first keeps the daemon's plugin socket from
// listening, and that must show where the admin looks: `adi daemon start` exits non-zero with the
// cause, `adi daemon status` (and --json) says so, and once the name is free `adi daemon reload` binds
// it. The default directory of a non-root daemon (/tmp/adi-daemon-<uid>) made first by someone else is
// never used: a fresh directory of the daemon's own is, and status says why.
//
// The daemon tests need root (CI runs as root: `adi daemon setup` with users of their own, adi-t12p*);
// the directory tests run as anyone.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lookupUser } from '../../src/system/privilege.js';
import { resolveCommand } from '../../src/system/resolve.js';
import { resolvePaths } from '../../src/core/paths.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { bindPluginSocket, closePluginSocket, defaultPluginPlace } from '../../src/server/plugin-socket.js';
import { adi, killDaemons, ROOT, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { environOf, killProcessesOf, LAUNCHER, reachableByOthers, sh, startPluginDaemon } from './util.js';

const ADI = 'adi-t12p';
const ADI_ROOT = 'adi-t12p-root';
const ADMIN_USER = 'adi-t12p-admin';
const USERS = { ADI_USER: ADI, ADI_ROOT_USER: ADI_ROOT };
const IS_ROOT = process.getuid?.() === 0;

let skip: string | false = IS_ROOT ? false : 'needs root (CI runs it as root)';
if (skip === false) {
  try {
    resolveCommand('sudo');
    resolveCommand('useradd');
  } catch {
    skip = 'sudo and useradd are needed (install the sudo and passwd packages)';
  }
}
if (skip === false && !reachableByOthers(process.execPath)) skip = `other users cannot run ${process.execPath}`;
if (skip === false && !reachableByOthers(LAUNCHER)) skip = `the checkout (${ROOT}) is not readable by other users`;
if (skip === false && lookupUser('nobody') === null) skip = 'the user nobody (the squatter) does not exist';
if (skip !== false) console.log(`# plugin socket squatting tests skipped: ${skip}`);

interface Status {
  running: boolean;
  pid: number;
  plugin_socket: { state: string; address: string | null; error: string | null } | null;
}

/** Another user's process holding the abstract socket `@name` until killed. */
async function squat(name: string, user: string): Promise<ChildProcess> {
  const entry = lookupUser(user);
  assert.ok(entry !== null);
  const script =
    "const s = require('net').createServer(); s.listen({ path: '\\0' + process.env.NAME }, () => console.log('bound'));";
  const child = spawn(process.execPath, ['-e', script], {
    uid: entry.uid,
    gid: entry.gid,
    cwd: '/',
    env: { NAME: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('bound')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the squatter exited with ${String(code)}: ${stderr}`)));
  });
  return child;
}

function removeSetup(): void {
  killProcessesOf([ADI, ADI_ROOT]);
  const r = sh(process.execPath, [path.join(ROOT, 'bin', 'adi.js'), 'daemon', 'setup', '--remove'], {
    PATH: process.env.PATH,
    ...USERS,
  });
  if (r.status !== 0) throw new Error(`setup --remove: ${r.out}`);
}

void describe('a squatted abstract plugin socket name is reported, not silent', { skip }, () => {
  const homes: TempHome[] = [];
  const squatters: ChildProcess[] = [];

  const dirs: string[] = [];

  before(async () => {
    // A crashed earlier run may have left its setup and admin user: undo them.
    removeSetup();
    removeAdmin();
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
    const r = await adi(['daemon', 'setup', '--admin', ADMIN_USER], { PATH: process.env.PATH, ...USERS });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
  after(async () => {
    for (const s of squatters) s.kill('SIGKILL');
    for (const h of homes) await h.cleanup();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    removeSetup();
    removeAdmin();
  });

  function removeAdmin(): void {
    if (lookupUser(ADMIN_USER) === null) return;
    killProcessesOf([ADMIN_USER]);
    const r = sh(resolveCommand('userdel'), [ADMIN_USER]);
    if (r.status !== 0) throw new Error(`userdel ${ADMIN_USER}: ${r.out}`);
  }

  void it("a non-root admin's daemon whose /tmp directory another user made first listens in a fresh one and says so", async () => {
    const admin = lookupUser(ADMIN_USER);
    const nobody = lookupUser('nobody');
    assert.ok(admin !== null && nobody !== null);
    const usual = `/tmp/adi-daemon-${admin.uid}`;
    fs.rmSync(usual, { recursive: true, force: true });
    fs.mkdirSync(usual, { mode: 0o755 });
    fs.chownSync(usual, nobody.uid, nobody.gid);
    dirs.push(usual);
    const h = tempHome(USERS);
    homes.push(h);
    sh('/bin/chown', ['-R', `${admin.uid}:${admin.gid}`, h.home]);
    const client = await startPluginDaemon(
      h.home,
      h.env,
      [{ name: 'p', plugin: 'p', config: { command: '/bin/sleep', args: ['620'], restart_on_failure: false } }],
      ['p'],
      { uid: admin.uid, gid: admin.gid },
    );
    try {
      const pong = await client.ping();
      assert.equal(pong.separation, true);
      const ps = pong.plugin_socket;
      assert.equal(ps?.state, 'listening', JSON.stringify(ps));
      assert.match(ps?.address ?? '', new RegExp(`^${usual}-[A-Za-z0-9]{6}/plugins-[0-9a-f]{12}\\.sock$`));
      assert.match(
        ps?.error ?? '',
        new RegExp(
          `the usual directory ${usual} belongs to uid ${nobody.uid}, not to the daemon's user \\(${admin.uid}\\)`,
        ),
      );
      const ownDir = path.dirname(ps?.address ?? '');
      assert.equal(fs.statSync(ownDir).uid, admin.uid);
      assert.deepEqual(fs.readdirSync(usual), [], "nothing in the other user's directory");

      const status = await adi(['daemon', 'status'], h.env);
      assert.match(
        status.stdout,
        new RegExp(`plugin socket: ${ps?.address ?? ''} \\(warning: the usual directory ${usual} belongs to uid`),
      );
      const started = await adi(['daemon', 'start'], h.env);
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stderr, /adi: warning: plugin socket: the usual directory/);

      // Its plugin services are told where it is.
      await client.startService('p');
      const info = (await client.listServices()).find((s) => s.name === 'p');
      assert.ok(info?.pid != null);
      assert.equal(environOf(info.pid).ADI_DAEMON_SOCKET, ps?.address);

      assert.equal((await adi(['daemon', 'stop'], h.env)).code, 0);
      await waitFor(() => !fs.existsSync(ownDir), 15_000, 'the fresh directory to be removed at stop');
    } finally {
      client.close();
      await killDaemons(h.home);
    }
  });

  void it('adi daemon start exits 1 naming the cause; status shows it; reload binds once the name is free', async () => {
    const name = `adi-t12-squat-${process.pid}`;
    const squatter = await squat(name, 'nobody');
    squatters.push(squatter);
    const h = tempHome({ ...USERS, ADI_DAEMON_PLUGIN_SOCKET: `@${name}` });
    homes.push(h);
    try {
      const started = await adi(['daemon', 'start'], h.env);
      assert.equal(started.code, 1, started.stdout + started.stderr);
      assert.match(started.stdout, /adi daemon started \(pid \d+\)/, 'the daemon itself runs');
      assert.match(
        started.stderr,
        new RegExp(
          `the daemon runs \\(pid \\d+\\), but plugin services cannot reach it: the plugin socket @${name} is not listening: @${name} is already bound by another process`,
        ),
      );

      const status = await adi(['daemon', 'status'], h.env);
      assert.equal(status.code, 0, status.stderr);
      assert.match(
        status.stdout,
        new RegExp(
          `plugin socket: NOT LISTENING: plugin services cannot reach the daemon: @${name} is already bound by another process`,
        ),
      );
      const json = JSON.parse((await adi(['daemon', 'status', '--json'], h.env)).stdout) as Status;
      assert.equal(json.plugin_socket?.state, 'failed');
      assert.equal(json.plugin_socket?.address, `@${name}`);
      assert.match(json.plugin_socket?.error ?? '', /already bound by another process/);
      assert.match(fs.readFileSync(h.paths.logFile, 'utf8'), /plugin socket: .*already bound by another process/);

      const again = await adi(['daemon', 'start'], h.env);
      assert.equal(again.code, 1, 'still failing while the name is taken');
      assert.match(again.stderr, /plugin services cannot reach it/);

      // The squatter goes: a reload binds the name, and start is content.
      squatter.kill('SIGKILL');
      await new Promise((resolve) => squatter.once('exit', resolve));
      assert.equal((await adi(['daemon', 'reload'], h.env)).code, 0);
      const fixed = JSON.parse((await adi(['daemon', 'status', '--json'], h.env)).stdout) as Status;
      assert.deepEqual(fixed.plugin_socket, { state: 'listening', address: `@${name}`, error: null });
      assert.match((await adi(['daemon', 'status'], h.env)).stdout, new RegExp(`plugin socket: @${name}\\n`));
      const ok = await adi(['daemon', 'start'], h.env);
      assert.equal(ok.code, 0, ok.stderr);
      // The daemon holds it now: a squatter arriving later gets EADDRINUSE itself.
      await assert.rejects(squat(name, 'nobody'), /EADDRINUSE/);
    } finally {
      await adi(['daemon', 'stop'], h.env);
      await killDaemons(h.home);
    }
  });
});

void describe('the default plugin socket directory another user made first', () => {
  let root = '';
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-t12d-'));
  });
  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
  });

  void it('is never used: a fresh directory of our own beside it is, and the note says why', async () => {
    const usual = path.join(root, 'adi-daemon-7');
    fs.mkdirSync(usual);
    // As root, the squatter is another user (nobody); as anyone, a directory others may write.
    const nobody = lookupUser('nobody');
    if (IS_ROOT && nobody !== null) fs.chownSync(usual, nobody.uid, nobody.gid);
    else fs.chmodSync(usual, 0o777);
    const planted = path.join(usual, 'plugins-0123456789ab.sock');
    const endpoint = resolvePaths({ env: { ADI_DAEMON_SOCKET: planted }, home: root, platform: 'linux' }).socket;

    const place = defaultPluginPlace(endpoint);
    assert.ok(place.ownDir !== null && place.ownDir.startsWith(`${usual}-`), String(place.ownDir));
    assert.equal(place.endpoint.file, path.join(place.ownDir, 'plugins-0123456789ab.sock'));
    assert.match(
      place.note ?? '',
      new RegExp(
        `the usual directory ${usual} (belongs to uid \\d+|is writable by other users).*listening in ${place.ownDir} instead`,
      ),
    );
    const st = fs.lstatSync(place.ownDir);
    assert.equal(st.uid, process.getuid?.());
    assert.equal(st.mode & 0o777, 0o711);

    const server = await bindPluginSocket({
      endpoint: place.endpoint,
      gid: process.getgid?.() ?? 0,
      log: new MemoryLogger(),
    });
    await new Promise<void>((resolve, reject) => {
      const s = net.createConnection(place.endpoint.address, () => {
        s.destroy();
        resolve();
      });
      s.once('error', reject);
    });
    assert.deepEqual(fs.readdirSync(usual), [], "nothing is put in the other user's directory");
    closePluginSocket(server, place.endpoint, place.ownDir);
    assert.equal(fs.existsSync(place.ownDir), false, 'the fresh directory goes with the daemon');

    // Our own directory is used as it is.
    const mine = path.join(root, 'mine');
    const ours = defaultPluginPlace({
      ...endpoint,
      address: path.join(mine, 'p.sock'),
      display: path.join(mine, 'p.sock'),
      file: path.join(mine, 'p.sock'),
    });
    assert.deepEqual(
      { ownDir: ours.ownDir, note: ours.note, file: ours.endpoint.file },
      { ownDir: null, note: null, file: path.join(mine, 'p.sock') },
    );
    assert.equal(fs.statSync(mine).mode & 0o777, 0o711);
  });
});
