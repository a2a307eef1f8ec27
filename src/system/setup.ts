// `adi daemon setup`: the one-time setup, made idempotent, validated and reversible.
// It creates ADI_USER and ADI_ROOT_USER as system users without a login shell, installs one sudoers
// file (checked with `visudo -c` before it goes live), and records what it created in a root-owned
// manifest so that `--remove` deletes exactly that and never a user that existed before.
//
// The work is split into a plan (pure reads of the system: what would change) and its application, so
// `--dry-run` shows exactly the actions a real run would take, and a second run plans nothing.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import {
  ADMIN_NAME_PATTERN,
  DEFAULT_LOCATIONS,
  USER_NAME_PATTERN,
  cleanEnv,
  groupExists,
  lookupUser,
  manifestPath,
  sharedPluginsDir,
  sudoersFilePath,
  type SetupLocations,
} from './privilege.js';
import { resolveCommand } from './resolve.js';

export interface SetupUsers {
  adiUser: string;
  adiRootUser: string;
  /** The daemon's user: SUDO_USER of `sudo adi daemon setup`, root when there is none. */
  adminUser: string;
}

export interface SetupOptions extends SetupUsers {
  locations?: SetupLocations;
}

/** What setup created, kept in `<stateDir>/setup-<adiUser>.json` (root-owned, world-readable). */
export interface SetupManifest {
  version: 1;
  adi_user: string;
  adi_root_user: string;
  admin_user: string;
  /** Users this tool created (and so may delete); users that existed before are never listed. */
  created_users: string[];
  /** Groups this tool created along with those users. */
  created_groups: string[];
  /** The sudoers file this tool installed. */
  sudoers_file: string | null;
}

export type SetupAction =
  | { kind: 'create-user'; user: string; shell: string; newGroup: boolean; comment: string }
  | { kind: 'write-sudoers'; file: string; content: string; replaces: 'none' | 'different' | 'unreadable' }
  | { kind: 'write-manifest'; file: string; manifest: SetupManifest }
  | { kind: 'remove-sudoers'; file: string }
  | { kind: 'delete-user'; user: string }
  | { kind: 'delete-group'; group: string }
  | { kind: 'remove-manifest'; file: string }
  // Installed plugins live outside the admin's (often 0700) home so ADI_USER can read them: see
  // src/plugins/location.ts. Only root can create the folder there; the admin owns it.
  | { kind: 'plugins-dir'; dir: string; owner: string; uid: number; gid: number; exists: boolean }
  | { kind: 'remove-plugins-dir'; dir: string };

export interface SetupPlan {
  mode: 'setup' | 'remove';
  adiUser: string;
  actions: SetupAction[];
  /** What is already in place and left alone. */
  notes: string[];
  locations: SetupLocations;
}

/** The first line of the sudoers file: how `--remove` recognises a file it wrote even without a manifest. */
export const SUDOERS_MARKER = '# Managed by `adi daemon setup` (adi-daemon).';

/** Home of the created users: they have none (Debian's convention for system users, like nobody). */
const NO_HOME = '/nonexistent';
const TOOL_TIMEOUT_MS = 60_000;

export function renderSudoers(u: SetupUsers): string {
  return [
    SUDOERS_MARKER,
    '# `adi daemon setup --remove` deletes this file; a hand edit is overwritten by the next setup.',
    `# ${u.adiRootUser}: privileged commands (SudoRun) - may run anything as root.`,
    `# ${u.adminUser}: the daemon's user - may act as ${u.adiUser} (Run, plugin services) and ${u.adiRootUser} (SudoRun).`,
    `# ${u.adiUser}: the plugin user - no sudo rights at all, on purpose.`,
    // The daemon calls sudo without a terminal; some distributions default to requiretty.
    `Defaults:${u.adiRootUser} !requiretty`,
    `Defaults:${u.adminUser} !requiretty`,
    `${u.adiRootUser} ALL=(root) NOPASSWD: ALL`,
    `${u.adminUser} ALL=(${u.adiUser},${u.adiRootUser}) NOPASSWD: ALL`,
    '',
  ].join('\n');
}

/** The login shell of the created users: nologin where it exists. */
export function nologinShell(): string {
  for (const candidate of ['/usr/sbin/nologin', '/sbin/nologin', '/usr/bin/nologin', '/bin/false', '/usr/bin/false']) {
    try {
      const st = fs.statSync(candidate);
      if (st.isFile() && (st.mode & 0o111) !== 0) return candidate;
    } catch {
      // try the next one
    }
  }
  throw new AdiError('BAD_CONFIG', 'Neither nologin nor false was found to use as the login shell of the adi users.');
}

function checkUsers(u: SetupUsers): void {
  for (const [what, name] of [
    ['ADI_USER', u.adiUser],
    ['ADI_ROOT_USER', u.adiRootUser],
  ] as const) {
    if (!USER_NAME_PATTERN.test(name)) {
      throw new AdiError(
        'BAD_ARGUMENT',
        `${what}=${JSON.stringify(name)} is not a usable user name: 1-32 characters of a-z, 0-9, '_' or '-', starting with a letter or '_'.`,
      );
    }
    if (name === 'root') throw new AdiError('BAD_ARGUMENT', `${what} may not be root.`);
  }
  if (!ADMIN_NAME_PATTERN.test(u.adminUser)) {
    throw new AdiError(
      'BAD_ARGUMENT',
      `The admin user ${JSON.stringify(u.adminUser)} is not a user name setup can write into sudoers.`,
    );
  }
  if (u.adiUser === u.adiRootUser)
    throw new AdiError('BAD_ARGUMENT', `ADI_USER and ADI_ROOT_USER must differ (both are ${u.adiUser}).`);
  if (u.adminUser === u.adiUser || u.adminUser === u.adiRootUser) {
    throw new AdiError(
      'BAD_ARGUMENT',
      `The admin user (${u.adminUser}) must not be one of the adi users: the daemon must not share the plugins' or the root helper's uid. Run setup with sudo from the admin's account, or pass --admin.`,
    );
  }
}

function requireTool(name: string, pkg: string): string {
  try {
    return resolveCommand(name);
  } catch {
    throw new AdiError(
      'BAD_CONFIG',
      `${name} is not installed (looked in the secure PATH). Install the ${pkg} package, e.g. \`apt-get install ${pkg}\`, then run setup again.`,
    );
  }
}

export function readManifest(file: string): SetupManifest | null {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new AdiError('BAD_CONFIG', `Cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const m = JSON.parse(raw) as Partial<SetupManifest>;
    if (m.version !== 1 || !Array.isArray(m.created_users) || !Array.isArray(m.created_groups))
      throw new Error('unknown format');
    const names = [...m.created_users, ...m.created_groups];
    if (!names.every((n) => typeof n === 'string' && USER_NAME_PATTERN.test(n) && n !== 'root'))
      throw new Error('bad user name');
    return m as SetupManifest;
  } catch (err) {
    throw new AdiError(
      'BAD_CONFIG',
      `${file} is not a valid setup record (${(err as Error).message}); fix or delete it, then run setup again.`,
    );
  }
}

function serializeManifest(m: SetupManifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}

function readIfPossible(file: string): { content: string | null; unreadable: boolean } {
  try {
    return { content: fs.readFileSync(file, 'utf8'), unreadable: false };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { content: null, unreadable: code !== 'ENOENT' };
  }
}

/** What `adi daemon setup` would do now. Reads the system; changes nothing. */
export function planSetup(opts: SetupOptions): SetupPlan {
  const loc = opts.locations ?? DEFAULT_LOCATIONS;
  if (process.platform !== 'linux') {
    throw new AdiError('BAD_CONFIG', `adi daemon setup supports Linux only (this is ${process.platform}).`);
  }
  checkUsers(opts);
  requireTool('sudo', 'sudo');
  requireTool('visudo', 'sudo');
  const adminEntry = lookupUser(opts.adminUser);
  if (adminEntry === null) {
    throw new AdiError('BAD_ARGUMENT', `The admin user ${opts.adminUser} does not exist.`);
  }

  const actions: SetupAction[] = [];
  const notes: string[] = [];
  const mFile = manifestPath(opts.adiUser, loc);
  const previous = readManifest(mFile);
  const createdUsers = new Set(previous?.created_users ?? []);
  const createdGroups = new Set(previous?.created_groups ?? []);

  const shell = nologinShell();
  const roles: Array<[string, string]> = [
    [opts.adiUser, 'adi-daemon plugin user'],
    [opts.adiRootUser, 'adi-daemon privileged helper'],
  ];
  for (const [user, comment] of roles) {
    const entry = lookupUser(user);
    if (entry === null) {
      requireTool('useradd', 'passwd');
      const newGroup = !groupExists(user);
      actions.push({ kind: 'create-user', user, shell, newGroup, comment });
      createdUsers.add(user);
      if (newGroup) createdGroups.add(user);
    } else {
      notes.push(
        `user ${user} exists (uid ${entry.uid}, shell ${entry.shell})${createdUsers.has(user) ? ', created by an earlier setup' : ', kept as it is'}`,
      );
    }
  }

  const file = sudoersFilePath(opts.adiUser, loc);
  const content = renderSudoers(opts);
  const current = readIfPossible(file);
  if (current.content === content) {
    notes.push(`${file} is up to date`);
  } else {
    actions.push({
      kind: 'write-sudoers',
      file,
      content,
      replaces: current.unreadable ? 'unreadable' : current.content === null ? 'none' : 'different',
    });
  }

  const pluginsDir = sharedPluginsDir(opts.adiUser, loc.stateDir);
  const pluginsSt = lstatOrNull(pluginsDir);
  if (pluginsSt !== null && !pluginsSt.isDirectory()) {
    throw new AdiError(
      'BAD_CONFIG',
      `${pluginsDir} exists and is not a directory (a link?); remove it, then run setup again.`,
    );
  }
  if (pluginsSt === null || pluginsSt.uid !== adminEntry.uid || (pluginsSt.mode & 0o7777) !== 0o755) {
    actions.push({
      kind: 'plugins-dir',
      dir: pluginsDir,
      owner: opts.adminUser,
      uid: adminEntry.uid,
      gid: adminEntry.gid,
      exists: pluginsSt !== null,
    });
  } else {
    notes.push(`${pluginsDir} (installed plugins) is in place`);
  }

  const manifest: SetupManifest = {
    version: 1,
    adi_user: opts.adiUser,
    adi_root_user: opts.adiRootUser,
    admin_user: opts.adminUser,
    created_users: [...createdUsers],
    created_groups: [...createdGroups],
    sudoers_file: file,
  };
  if (previous === null || serializeManifest(previous) !== serializeManifest(manifest)) {
    actions.push({ kind: 'write-manifest', file: mFile, manifest });
  }
  return { mode: 'setup', adiUser: opts.adiUser, actions, notes, locations: loc };
}

/** What `adi daemon setup --remove` would undo: only what the manifest says setup created. */
export function planRemove(opts: { adiUser: string; locations?: SetupLocations }): SetupPlan {
  const loc = opts.locations ?? DEFAULT_LOCATIONS;
  if (!USER_NAME_PATTERN.test(opts.adiUser)) {
    throw new AdiError('BAD_ARGUMENT', `ADI_USER=${JSON.stringify(opts.adiUser)} is not a usable user name.`);
  }
  const mFile = manifestPath(opts.adiUser, loc);
  const manifest = readManifest(mFile);
  const actions: SetupAction[] = [];
  const notes: string[] = [];
  const file = manifest?.sudoers_file ?? sudoersFilePath(opts.adiUser, loc);
  const current = readIfPossible(file);
  // Only a file this tool wrote (its marker line) is removed, even when the manifest names it.
  if (current.content !== null && current.content.startsWith(SUDOERS_MARKER)) {
    actions.push({ kind: 'remove-sudoers', file });
  } else if (current.content !== null) {
    notes.push(`${file} was not written by adi daemon setup; left alone`);
  } else if (current.unreadable) {
    notes.push(`${file} cannot be read (run as root)`);
  }
  if (manifest === null) {
    notes.push(`no record of created users (${mFile}); no user is deleted`);
  } else {
    for (const user of [...manifest.created_users].reverse()) {
      if (lookupUser(user) !== null) actions.push({ kind: 'delete-user', user });
    }
    for (const group of manifest.created_groups) {
      // userdel usually takes the user's own group with it; whatever remains is deleted afterwards.
      if (groupExists(group) || manifest.created_users.includes(group)) actions.push({ kind: 'delete-group', group });
    }
    // The plugins folder goes only when empty: it holds what the admin installed.
    const pluginsDir = sharedPluginsDir(opts.adiUser, loc.stateDir);
    const st = lstatOrNull(pluginsDir);
    if (st?.isDirectory() === true) {
      if (fs.readdirSync(pluginsDir).length === 0) actions.push({ kind: 'remove-plugins-dir', dir: pluginsDir });
      else notes.push(`${pluginsDir} still holds installed plugins; kept (adi plugin uninstall them, or delete it)`);
    }
    actions.push({ kind: 'remove-manifest', file: mFile });
  }
  return { mode: 'remove', adiUser: opts.adiUser, actions, notes, locations: loc };
}

/** One line per action, for --dry-run and for the report of a real run. */
export function describeAction(a: SetupAction): string {
  switch (a.kind) {
    case 'create-user':
      return `create system user ${a.user} (no home, shell ${a.shell}${a.newGroup ? `, own group ${a.user}` : `, existing group ${a.user}`})`;
    case 'write-sudoers': {
      const how = a.replaces === 'none' ? 'install' : a.replaces === 'different' ? 'update' : 'install or update';
      return `${how} ${a.file} (mode 0440, checked with visudo -c):\n${a.content
        .trimEnd()
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n')}`;
    }
    case 'write-manifest':
      return `record what setup created in ${a.file}`;
    case 'remove-sudoers':
      return `remove ${a.file}`;
    case 'delete-user':
      return `delete user ${a.user} (created by setup)`;
    case 'delete-group':
      return `delete group ${a.group} if it is still there (created by setup)`;
    case 'remove-manifest':
      return `remove the setup record ${a.file}`;
    case 'plugins-dir':
      return `${a.exists ? 'give' : 'create'} ${a.dir} (installed plugins, outside the admin's home so the plugin user can read them) ${a.exists ? 'to' : 'owned by'} ${a.owner}, mode 0755`;
    case 'remove-plugins-dir':
      return `remove the empty plugins folder ${a.dir}`;
  }
}

interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function tool(name: string, args: string[], pkg = 'passwd'): ToolResult {
  const file = requireTool(name, pkg);
  const r = spawnSync(file, args, { env: cleanEnv(), encoding: 'utf8', timeout: TOOL_TIMEOUT_MS });
  if (r.error !== undefined) {
    throw new AdiError('INTERNAL', `${name} ${args.join(' ')} could not run: ${r.error.message}`, { cause: r.error });
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mustTool(name: string, args: string[], pkg = 'passwd'): ToolResult {
  const r = tool(name, args, pkg);
  if (r.status !== 0) {
    const said = (r.stderr || r.stdout).trim();
    throw new AdiError(
      'INTERNAL',
      `${name} ${args.join(' ')} failed (exit ${r.status ?? 'signal'})${said ? `: ${said}` : ''}`,
    );
  }
  return r;
}

function writeRootFile(file: string, content: string, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, content, { mode, flag: 'wx' });
  fs.chmodSync(tmp, mode);
  fs.chownSync(tmp, 0, 0);
  fs.renameSync(tmp, file);
}

function lstatOrNull(file: string): fs.Stats | null {
  try {
    return fs.lstatSync(file);
  } catch {
    return null;
  }
}

/**
 * Create the plugins folder (its parent root-owned 0755) and give it, with what is in it, to the admin:
 * on an admin change the new admin takes over the plugins installed there. Links are never followed.
 */
function preparePluginsDir(a: Extract<SetupAction, { kind: 'plugins-dir' }>): void {
  // One recursive call: the parent may be removed by a concurrent --remove of another ADI_USER.
  if (!a.exists) fs.mkdirSync(a.dir, { recursive: true, mode: 0o755 });
  const st = fs.lstatSync(a.dir);
  if (!st.isDirectory())
    throw new AdiError('BAD_CONFIG', `${a.dir} is not a directory; remove it, then run setup again.`);
  const give = (p: string): void => {
    const s = fs.lstatSync(p);
    if (s.uid !== a.uid || s.gid !== a.gid) fs.lchownSync(p, a.uid, a.gid);
    if (s.isDirectory()) for (const entry of fs.readdirSync(p)) give(path.join(p, entry));
  };
  give(a.dir);
  fs.chmodSync(a.dir, 0o755);
  // The plugin user must pass through the parents too, whatever umask created them.
  for (const parent of [path.dirname(a.dir), path.dirname(path.dirname(a.dir))]) {
    const mode = fs.statSync(parent).mode & 0o7777;
    if ((mode & 0o005) !== 0o005) fs.chmodSync(parent, mode | 0o005);
  }
}

/** `visudo -c` over the whole configuration; throws with its output when it fails. */
function checkAllSudoers(): string {
  const r = tool('visudo', ['-c'], 'sudo');
  if (r.status !== 0) {
    throw new AdiError(
      'BAD_CONFIG',
      `visudo -c reports an invalid sudo configuration: ${(r.stdout + r.stderr).trim()}`,
    );
  }
  return r.stdout + r.stderr;
}

function installSudoers(file: string, content: string, loc: SetupLocations): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
  // The candidate's name has a '.', so sudo ignores it even if this process dies before the rename.
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}`);
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, content, { mode: 0o440, flag: 'wx' });
  try {
    fs.chmodSync(tmp, 0o440);
    fs.chownSync(tmp, 0, 0);
    const check = tool('visudo', ['-c', '-f', tmp], 'sudo');
    if (check.status !== 0) {
      throw new AdiError(
        'BAD_CONFIG',
        `visudo rejected the sudoers file setup wrote, so it was not installed: ${(check.stdout + check.stderr).trim()}`,
      );
    }
    const previous = readIfPossible(file).content;
    fs.renameSync(tmp, file);
    try {
      const all = checkAllSudoers();
      if (loc.sudoersDir === DEFAULT_LOCATIONS.sudoersDir && !all.includes(file)) {
        throw new AdiError(
          'BAD_CONFIG',
          `sudo does not read ${file}: /etc/sudoers has no \`@includedir ${dir}\` line. Add it with visudo, then run setup again.`,
        );
      }
    } catch (err) {
      // Put back what was there: a setup that fails must not leave sudo broken.
      if (previous === null) fs.rmSync(file, { force: true });
      else writeRootFile(file, previous, 0o440);
      throw err;
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Whether sudo grants `user` anything (sudo -l -U, as root); null when it grants nothing. */
export function sudoRightsOf(user: string): string | null {
  const r = tool('sudo', ['-n', '-l', '-U', user], 'sudo');
  const text = (r.stdout + r.stderr).trim();
  if (/is not allowed to run sudo/.test(text)) return null;
  if (/may run the following commands/.test(text)) return text;
  throw new AdiError('INTERNAL', `Could not tell whether ${user} may use sudo: sudo -l -U said: ${text}`);
}

/**
 * Carries out a plan (as root). Each step is reported through `report` as it completes; the manifest is
 * saved after every user created, so a run that fails half-way can still be removed exactly.
 * Returns the number of actions taken.
 */
export function applyPlan(plan: SetupPlan, report: (line: string) => void = () => {}): number {
  if (process.getuid?.() !== 0) {
    throw new AdiError(
      'PERMISSION_DENIED',
      'adi daemon setup changes users and sudoers: run it as root: sudo adi daemon setup',
    );
  }
  const loc = plan.locations;
  const mFile = manifestPath(plan.adiUser, loc);
  const final = plan.actions.find(
    (a): a is Extract<SetupAction, { kind: 'write-manifest' }> => a.kind === 'write-manifest',
  )?.manifest;
  // The record as it stands on disk, extended step by step.
  const onDisk = plan.mode === 'setup' ? readManifest(mFile) : null;
  const record: SetupManifest | null =
    final === undefined
      ? null
      : {
          ...final,
          created_users: [...(onDisk?.created_users ?? [])],
          created_groups: [...(onDisk?.created_groups ?? [])],
        };
  const save = (): void => {
    if (record !== null) writeRootFile(mFile, serializeManifest(record), 0o644);
  };

  let done = 0;
  for (const a of plan.actions) {
    switch (a.kind) {
      case 'create-user': {
        const args = [
          '--system',
          '--no-create-home',
          '--home-dir',
          NO_HOME,
          '--shell',
          a.shell,
          '--comment',
          a.comment,
        ];
        args.push(...(a.newGroup ? ['--user-group'] : ['--gid', a.user]), a.user);
        mustTool('useradd', args);
        if (record !== null) {
          if (!record.created_users.includes(a.user)) record.created_users.push(a.user);
          if (a.newGroup && !record.created_groups.includes(a.user)) record.created_groups.push(a.user);
          save();
        }
        break;
      }
      case 'write-sudoers':
        installSudoers(a.file, a.content, loc);
        break;
      case 'write-manifest':
        if (record !== null) {
          Object.assign(record, a.manifest);
          save();
        }
        break;
      case 'remove-sudoers':
        fs.rmSync(a.file, { force: true });
        checkAllSudoers();
        break;
      case 'delete-user':
        mustTool('userdel', [a.user]);
        break;
      case 'delete-group':
        if (groupExists(a.group)) mustTool('groupdel', [a.group]);
        break;
      case 'plugins-dir':
        preparePluginsDir(a);
        break;
      case 'remove-plugins-dir':
        try {
          fs.rmdirSync(a.dir); // only when still empty
          fs.rmdirSync(path.dirname(a.dir)); // the shared parent, when no other ADI_USER has one
        } catch {
          // not empty (any more): kept
        }
        break;
      case 'remove-manifest':
        fs.rmSync(a.file, { force: true });
        try {
          fs.rmdirSync(path.dirname(a.file)); // only when empty
        } catch {
          // other records remain (another ADI_USER), or it is not ours to remove
        }
        break;
    }
    done++;
    report(describeAction(a));
  }

  if (plan.mode === 'setup') {
    // The guarantee the whole model rests on: the plugin user has no sudo rights, from any file.
    const manifest = final ?? readManifest(mFile);
    const adiUser = manifest?.adi_user ?? plan.adiUser;
    const rights = sudoRightsOf(adiUser);
    if (rights !== null) {
      throw new AdiError(
        'BAD_CONFIG',
        `Setup is installed, but ${adiUser} can use sudo through rules outside adi's file, so plugins could escalate. Remove those rules (or pick another ADI_USER). sudo -l -U ${adiUser} says: ${rights}`,
      );
    }
  }
  return done;
}
