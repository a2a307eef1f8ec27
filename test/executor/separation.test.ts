// Privilege separation for real: users, sudoers, sudo. Needs root (CI runs as root); skipped otherwise.
// It creates users adi-test / adi-test-root (and adi-test-admin, adi-test-pre for two scenarios) and
// removes only what it created, even when a test fails (after hook).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { command as setupCommand } from '../../src/cli/commands/daemon-setup.js';
import type { CliIO } from '../../src/cli/command.js';
import { AdiError } from '../../src/core/errors.js';
import { AuditLog, auditFile } from '../../src/executor/audit.js';
import { Executor } from '../../src/executor/executor.js';
import { cleanEnv, lookupUser, manifestPath, separationStatus, sudoersFilePath } from '../../src/system/privilege.js';
import { resolveCommand } from '../../src/system/resolve.js';
import { applyPlan, planRemove, planSetup, readManifest, renderSudoers, sudoRightsOf } from '../../src/system/setup.js';
import type { SudoRun } from '../../src/protocol/types.js';
import { ADMIN, ANONYMOUS, type Identity } from '../../src/core/identity.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { approvedFilesProblem } from '../../src/plugins/digest.js';
import { approveInstalled } from '../plugins/util.js';
import { readAudit, readPidFile, tempDir, testPaths, waitDead } from './util.js';
import { pidsOfUids } from '../helpers/proc.js';

const IS_ROOT = process.getuid?.() === 0;
const skip = IS_ROOT ? false : 'needs root';
if (!IS_ROOT) console.log('# separation tests skipped: they need root (CI runs them as root)');

const ADI = 'adi-test';
const ADI_ROOT = 'adi-test-root';
const ADMIN_USER = 'adi-test-admin';
const PRE_USER = 'adi-test-pre';

const dirs: string[] = [];
/** Users this file created itself with useradd (not through setup). */
const ownUsers: string[] = [];
let root = '';

function sh(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: cleanEnv() });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function memoryIO(env: NodeJS.ProcessEnv): CliIO & { text(): string } {
  let out = '';
  const sink = {
    write(chunk: string | Uint8Array) {
      out += String(chunk);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  return { stdout: sink, stderr: sink, stdin: process.stdin, env, text: () => out };
}

const userEnv = (adiUser = ADI, adiRootUser = ADI_ROOT): NodeJS.ProcessEnv => ({
  ADI_USER: adiUser,
  ADI_ROOT_USER: adiRootUser,
  PATH: process.env.PATH,
});

/** Kills processes still running as a test user (they would make userdel fail); by pid, from /proc. */
function killProcessesOf(users: string[]): void {
  const uids = new Set(users.map((u) => lookupUser(u)?.uid).filter((u): u is number => u !== undefined));
  if (uids.size === 0) return;
  for (const pid of pidsOfUids(uids)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

function removeSetupFor(adiUser: string): void {
  if (fs.existsSync(manifestPath(adiUser)) || fs.existsSync(sudoersFilePath(adiUser))) {
    applyPlan(planRemove({ adiUser }));
  }
}

function addOwnUser(name: string): void {
  assert.equal(lookupUser(name), null, `${name} already exists; remove it before running the tests`);
  const r = sh(resolveCommand('useradd'), [
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--shell',
    '/usr/sbin/nologin',
    '--user-group',
    name,
  ]);
  assert.equal(r.status, 0, r.out);
  ownUsers.push(name);
}

before(() => {
  if (!IS_ROOT) return;
  // A run that crashed before its cleanup left a setup behind: undo it (it is ours by its record).
  killProcessesOf([ADI, ADI_ROOT, PRE_USER]);
  removeSetupFor(ADI);
  removeSetupFor(PRE_USER);
  root = tempDir('adi-sep-');
  fs.chmodSync(root, 0o755);
  dirs.push(root);
});

after(() => {
  if (!IS_ROOT) return;
  killProcessesOf([ADI, ADI_ROOT, ADMIN_USER, PRE_USER]);
  const errors: unknown[] = [];
  for (const u of [ADI, PRE_USER]) {
    try {
      removeSetupFor(u);
    } catch (err) {
      errors.push(err);
    }
  }
  for (const u of ownUsers.reverse()) {
    if (lookupUser(u) !== null) {
      const r = sh(resolveCommand('userdel'), [u]);
      if (r.status !== 0) errors.push(new Error(`userdel ${u}: ${r.out}`));
    }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  if (errors.length > 0) throw errors[0];
});

void test('sudo and visudo are installed (CI must install the sudo package)', { skip }, () => {
  // Not a skip: without sudo the privilege model cannot work, and .ci/run installs it.
  assert.doesNotThrow(() => resolveCommand('sudo'), 'sudo is missing: install the sudo package (.ci/run must do it)');
  assert.doesNotThrow(() => resolveCommand('visudo'), 'visudo is missing: install the sudo package');
});

void test('the users do not exist before setup', { skip }, () => {
  assert.equal(lookupUser(ADI), null, `${ADI} exists before the test; delete it (userdel ${ADI})`);
  assert.equal(lookupUser(ADI_ROOT), null, `${ADI_ROOT} exists before the test; delete it`);
});

void test('adi daemon setup --dry-run shows the plan and changes nothing', { skip }, async () => {
  const io = memoryIO(userEnv());
  assert.equal(await setupCommand.run(['--dry-run'], io), 0);
  const text = io.text();
  assert.match(text, /create system user adi-test /);
  assert.match(text, /create system user adi-test-root /);
  assert.match(text, /adi-test-root ALL=\(root\) NOPASSWD: ALL/);
  assert.equal(lookupUser(ADI), null);
  assert.equal(fs.existsSync(sudoersFilePath(ADI)), false);
});

void test('adi daemon setup creates both users and a sudoers file that visudo accepts', { skip }, async () => {
  const io = memoryIO(userEnv());
  assert.equal(await setupCommand.run([], io), 0, io.text());
  for (const u of [ADI, ADI_ROOT]) {
    const e = lookupUser(u);
    assert.ok(e !== null, `${u} was not created`);
    assert.match(e.shell, /nologin|false/);
    assert.ok(e.uid < 1000, 'a system user');
  }
  const file = sudoersFilePath(ADI);
  assert.equal(path.basename(file).includes('.'), false);
  const st = fs.statSync(file);
  assert.equal(st.mode & 0o777, 0o440);
  assert.equal(st.uid, 0);
  assert.equal(
    fs.readFileSync(file, 'utf8'),
    renderSudoers({ adiUser: ADI, adiRootUser: ADI_ROOT, adminUser: 'root' }),
  );
  const check = sh(resolveCommand('visudo'), ['-c']);
  assert.equal(check.status, 0, check.out);
  assert.ok(check.out.includes(file), 'sudo reads the file');
  const m = readManifest(manifestPath(ADI));
  assert.deepEqual(m?.created_users, [ADI, ADI_ROOT]);
  assert.equal(separationStatus({ adiUser: ADI, adiRootUser: ADI_ROOT }).active, true);
});

void test('a second run changes nothing', { skip }, async () => {
  const file = sudoersFilePath(ADI);
  const before = fs.statSync(file);
  const manifestBefore = fs.statSync(manifestPath(ADI));
  const plan = planSetup({ adiUser: ADI, adiRootUser: ADI_ROOT, adminUser: 'root' });
  assert.deepEqual(plan.actions, []);
  const io = memoryIO(userEnv());
  assert.equal(await setupCommand.run([], io), 0);
  assert.match(io.text(), /Nothing changed/);
  const afterSt = fs.statSync(file);
  assert.equal(afterSt.ino, before.ino);
  assert.equal(afterSt.mtimeMs, before.mtimeMs);
  assert.equal(fs.statSync(manifestPath(ADI)).mtimeMs, manifestBefore.mtimeMs);
});

void test('the plugin user has no sudo rights at all', { skip }, () => {
  const adi = lookupUser(ADI);
  assert.ok(adi !== null);
  const r = spawnSync(resolveCommand('sudo'), ['-n', 'true'], {
    uid: adi.uid,
    gid: adi.gid,
    env: cleanEnv(),
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0, 'sudo -n true must fail for the plugin user');
  const asRoot = spawnSync(resolveCommand('sudo'), ['-n', '-u', ADI_ROOT, 'true'], {
    uid: adi.uid,
    gid: adi.gid,
    env: cleanEnv(),
    encoding: 'utf8',
  });
  assert.notEqual(asRoot.status, 0, 'nor become the root helper');
  assert.equal(sudoRightsOf(ADI), null);
});

function executor(adiUser = ADI) {
  const paths = testPaths(root, adiUser, ADI_ROOT);
  const log = new MemoryLogger();
  const audit = new AuditLog(auditFile(paths), log);
  return { ex: new Executor({ paths, log, audit }), file: audit.file, log, paths };
}

const sudoReq = (
  command: string,
  args: string[],
  reason = 'integration test',
  more: Partial<SudoRun> = {},
): SudoRun => ({ type: 'SudoRun', command, args, reason, ...more });
const text = (b: Uint8Array): string => Buffer.from(b).toString().trim();

void test('after setup, Run runs as the plugin user, without supplementary groups', { skip }, async () => {
  const { ex, file } = executor();
  assert.equal(ex.separation.active, true, ex.separation.reason);
  const r = await ex.run(ADMIN, { type: 'Run', command: '/usr/bin/id', args: ['-un'] });
  assert.equal(text(r.stdout), ADI);
  const g = await ex.run(ADMIN, { type: 'Run', command: 'id', args: ['-G'] });
  assert.equal(text(g.stdout), String(lookupUser(ADI)?.gid));
  const [line] = readAudit(file);
  assert.equal(line?.as, ADI);
});

void test("after setup, the admin's SudoRun runs as root", { skip }, async () => {
  const { ex, file } = executor();
  const r = await ex.sudoRun(ADMIN, sudoReq('/usr/bin/id', ['-u']), 'any');
  assert.equal(r.type, 'CommandResult', r.type === 'SudoDenied' ? r.reason : '');
  assert.equal(r.type === 'CommandResult' ? text(r.stdout) : '', '0');
  // Bytes pass through both sudo hops untouched (no pty is involved without a terminal).
  const bytes = 'process.stdout.write(Buffer.from(Array.from({ length: 256 }, (_, i) => i)))';
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const b = await ex.sudoRun(ADMIN, sudoReq(process.execPath, ['-e', bytes]), 'any');
  assert.deepEqual(b.type === 'CommandResult' ? Buffer.from(b.stdout) : b.reason, all);
  const line = readAudit(file).at(-2);
  assert.equal(line?.action, 'sudo_run');
  assert.equal(line?.identity, 'admin');
  assert.equal(line?.reason, 'integration test');
  assert.deepEqual(line?.result, { exit_code: 0, signal: null });
});

void test('a plugin may run only its approved patterns as root; every attempt is audited', { skip }, async (t) => {
  const { ex, file, paths } = executor();
  const net: Identity = { kind: 'plugin', plugin: 'net', label: 'plugin:net' };
  const patterns = ['/usr/bin/id -u', 'echo hello *'];
  // SudoRun also checks the plugin's installed files against its approval's digest.
  t.after(await approveInstalled(paths, 'net', patterns, true));
  const start = readAudit(file).length;

  const files = { approvedFiles: (separated: boolean) => approvedFilesProblem(paths, 'net', separated) };
  const ok = await ex.sudoRun(net, sudoReq('/usr/bin/id', ['-u']), patterns, files);
  assert.equal(ok.type === 'CommandResult' ? text(ok.stdout) : ok.reason, '0');
  // `;` inside an argument that a final * admits is harmless: no shell, echo prints it.
  const semi = await ex.sudoRun(net, sudoReq('echo', ['hello', '; id', '$(id)']), patterns, files);
  assert.equal(semi.type === 'CommandResult' ? text(semi.stdout) : semi.reason, 'hello ; id $(id)');

  // A hostile PATH in the daemon's (or a caller's) environment changes nothing: bare names use SECURE_PATH.
  const evil = tempDir('adi-evil-');
  dirs.push(evil);
  fs.writeFileSync(path.join(evil, 'id'), '#!/bin/sh\necho 0-but-hijacked\n', { mode: 0o755 });
  const savedPath = process.env.PATH;
  process.env.PATH = `${evil}:${savedPath ?? ''}`;
  try {
    const viaPath = await ex.sudoRun(net, sudoReq('id', ['-u']), patterns, files);
    assert.equal(viaPath.type === 'CommandResult' ? text(viaPath.stdout) : viaPath.reason, '0');
  } finally {
    process.env.PATH = savedPath;
  }

  const deniedCases: Array<[SudoRun, RegExp]> = [
    [sudoReq('/usr/bin/whoami', []), /not among the approved/],
    [sudoReq('/usr/bin/id', ['-u', '-n']), /match none/],
    [sudoReq('/usr/bin/id', ['-u;', 'id']), /match none/],
    [sudoReq('/usr/bin/id', ['-u; id']), /match none/],
    [sudoReq('/usr/bin/id', ['-u\n-n']), /match none/],
    [sudoReq('./id', ['-u']), /relative/],
    [sudoReq('usr/bin/id', ['-u']), /relative/],
    [sudoReq(path.join(evil, 'id'), ['-u']), /not among the approved/],
  ];
  for (const [req, why] of deniedCases) {
    const r = await ex.sudoRun(net, req, patterns, files);
    assert.equal(r.type, 'SudoDenied', `${req.command} ${JSON.stringify(req.args)}`);
    assert.match(r.type === 'SudoDenied' ? r.reason : '', why);
  }
  const anon = await ex.sudoRun(ANONYMOUS, sudoReq('/usr/bin/id', ['-u']), 'any');
  assert.equal(anon.type, 'SudoDenied');

  const lines = readAudit(file).slice(start);
  assert.equal(lines.length, 3 + deniedCases.length + 1);
  assert.deepEqual(
    lines.slice(0, 3).map((l) => [l.action, l.pattern]),
    [
      ['sudo_run', '/usr/bin/id -u'],
      ['sudo_run', 'echo hello *'],
      ['sudo_run', '/usr/bin/id -u'],
    ],
  );
  assert.equal(lines[2]?.argv[0], resolveCommand('/usr/bin/id'), 'the audit shows what really ran');
  assert.ok(lines.slice(3).every((l) => l.action === 'sudo_denied'));
  assert.deepEqual(
    lines.slice(3, -1).map((l) => l.identity),
    deniedCases.map(() => 'plugin:net'),
  );
  assert.equal(lines.at(-1)?.identity, 'anonymous');
});

void test('a timed-out SudoRun has its whole group killed, root processes included', { skip }, async () => {
  const { ex } = executor();
  const shared = tempDir('adi-pids-');
  dirs.push(shared);
  const pidFile = path.join(shared, 'root-sleep.pid');
  const err = await ex
    .sudoRun(
      ADMIN,
      sudoReq('/bin/sh', ['-c', 'sleep 300 & echo $! > "$1"; wait', 'sh', pidFile], 'timeout test', {
        timeout_secs: 1,
      }),
      'any',
    )
    .then(
      () => null,
      (e: unknown) => e,
    );
  assert.ok(err instanceof AdiError && err.code === 'COMMAND_TIMEOUT', String(err));
  const pid = await readPidFile(pidFile);
  assert.ok(await waitDead(pid), `root sleep ${pid} survived`);
});

void test('a daemon running as a non-root admin reaches both users through sudo', { skip }, async () => {
  addOwnUser(ADMIN_USER);
  const admin = lookupUser(ADMIN_USER);
  assert.ok(admin !== null);
  // Setup for this admin: only the sudoers file, the plugins folder's owner (and the record) change.
  const plan = planSetup({ adiUser: ADI, adiRootUser: ADI_ROOT, adminUser: ADMIN_USER });
  assert.deepEqual(
    plan.actions.map((a) => a.kind),
    ['write-sudoers', 'plugins-dir', 'write-manifest'],
  );
  applyPlan(plan);

  const home = tempDir('adi-admin-');
  dirs.push(home);
  fs.chownSync(home, admin.uid, admin.gid);
  const shared = tempDir('adi-pids-');
  dirs.push(shared);
  fs.chmodSync(shared, 0o1777);
  const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const base = pathToFileURL(distRoot + '/').href;
  const script = `
    const base = process.argv[1], shared = process.argv[2];
    const { Executor } = await import(base + 'src/executor/executor.js');
    const { AuditLog, auditFile } = await import(base + 'src/executor/audit.js');
    const { MemoryLogger } = await import(base + 'src/core/logger.js');
    const { resolvePaths } = await import(base + 'src/core/paths.js');
    const paths = resolvePaths({ env: process.env });
    const log = new MemoryLogger();
    const ex = new Executor({ paths, log, audit: new AuditLog(auditFile(paths), log) });
    const admin = { kind: 'admin', plugin: null, label: 'admin' };
    const out = { uid: process.getuid(), separation: ex.separation };
    const str = (b) => Buffer.from(b).toString().trim();
    out.run = str((await ex.run(admin, { type: 'Run', command: '/usr/bin/id', args: ['-un'] })).stdout);
    const s = await ex.sudoRun(admin, { type: 'SudoRun', command: '/usr/bin/id', args: ['-u'], reason: 'non-root admin' }, 'any');
    out.sudo = s.type === 'CommandResult' ? str(s.stdout) : s.reason;
    const sleeper = 'sleep 300 & echo $! > "$1"; wait';
    out.runTimeout = await ex.run(admin, { type: 'Run', command: '/bin/sh', args: ['-c', sleeper, 'sh', shared + '/run.pid'], timeout_secs: 1 }).then(() => 'no error', (e) => e.code);
    out.sudoTimeout = await ex.sudoRun(admin, { type: 'SudoRun', command: '/bin/sh', args: ['-c', sleeper, 'sh', shared + '/sudo.pid'], reason: 't', timeout_secs: 1 }, 'any').then(() => 'no error', (e) => e.code);
    out.log = log.lines;
    console.log(JSON.stringify(out));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, base, shared], {
    uid: admin.uid,
    gid: admin.gid,
    cwd: '/',
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...cleanEnv(), HOME: home, XDG_DATA_HOME: path.join(home, 'data'), ADI_USER: ADI, ADI_ROOT_USER: ADI_ROOT },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(out.uid, admin.uid);
  assert.deepEqual((out.separation as { active: boolean }).active, true, JSON.stringify(out.separation));
  assert.equal(out.run, ADI);
  assert.equal(out.sudo, '0');
  assert.equal(out.runTimeout, 'COMMAND_TIMEOUT');
  assert.equal(out.sudoTimeout, 'COMMAND_TIMEOUT');
  for (const f of ['run.pid', 'sudo.pid']) {
    const pid = await readPidFile(path.join(shared, f));
    assert.ok(await waitDead(pid, 5000), `${f}: process ${pid} (another user's) survived the timeout`);
  }
  const audit = readAudit(path.join(home, 'data', 'adi', 'logs', 'audit.log'));
  assert.deepEqual(
    audit.map((l) => l.action),
    ['run', 'sudo_run', 'run', 'sudo_run'],
  );

  // Back to the root admin for the remaining tests.
  applyPlan(planSetup({ adiUser: ADI, adiRootUser: ADI_ROOT, adminUser: 'root' }));
});

void test('adi daemon setup --remove undoes exactly what setup created', { skip }, async () => {
  killProcessesOf([ADI, ADI_ROOT]);
  const io = memoryIO(userEnv());
  assert.equal(await setupCommand.run(['--remove'], io), 0, io.text());
  assert.equal(lookupUser(ADI), null);
  assert.equal(lookupUser(ADI_ROOT), null);
  assert.equal(fs.existsSync(sudoersFilePath(ADI)), false);
  assert.equal(fs.existsSync(manifestPath(ADI)), false);
  assert.equal(sh(resolveCommand('getent'), ['group', ADI]).status, 2, 'its group is gone too');
  assert.equal(sh(resolveCommand('visudo'), ['-c']).status, 0);
  assert.equal(separationStatus({ adiUser: ADI, adiRootUser: ADI_ROOT }).active, false);
  const again = memoryIO(userEnv());
  assert.equal(await setupCommand.run(['--remove'], again), 0);
  assert.match(again.text(), /Nothing to remove/);
});

void test('--remove never deletes a user that existed before setup', { skip }, async () => {
  addOwnUser(PRE_USER);
  const env = userEnv(PRE_USER, ADI_ROOT);
  assert.equal(await setupCommand.run([], memoryIO(env)), 0);
  assert.deepEqual(readManifest(manifestPath(PRE_USER))?.created_users, [ADI_ROOT]);
  assert.equal(await setupCommand.run(['--remove'], memoryIO(env)), 0);
  assert.notEqual(lookupUser(PRE_USER), null, 'the pre-existing user is kept');
  assert.equal(lookupUser(ADI_ROOT), null, 'the user setup created is removed');
  assert.equal(fs.existsSync(sudoersFilePath(PRE_USER)), false);
});

void test('setup refuses to run as a non-root user', async () => {
  if (!IS_ROOT) {
    // Already not root: ask directly.
    const err = await setupCommand.run([], memoryIO(userEnv())).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof AdiError && err.code === 'PERMISSION_DENIED', String(err));
    assert.match(err.message, /run it as root: sudo adi daemon setup/);
    return;
  }
  const nobody = lookupUser('nobody');
  assert.ok(nobody !== null);
  const distRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const mod = pathToFileURL(path.join(distRoot, 'src/cli/commands/daemon-setup.js')).href;
  const script = `
    const { command } = await import(process.argv[1]);
    try { await command.run([], { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: {} }); console.log('ran'); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, mod], {
    uid: nobody.uid,
    gid: nobody.gid,
    cwd: '/',
    encoding: 'utf8',
    env: cleanEnv(),
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { code: string; message: string };
  assert.equal(out.code, 'PERMISSION_DENIED');
  assert.match(out.message, /run it as root: sudo adi daemon setup/);
});
