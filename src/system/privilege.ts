// The privilege model: whether the two users are set up, and the
// exact argv used to act as them. The daemon runs as its admin (or root), never as ADI_USER; the admin
// may become ADI_USER or ADI_ROOT_USER through the sudoers file `adi daemon setup` writes, and only
// ADI_ROOT_USER may become root.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from '../core/paths.js';
import { SECURE_PATH, resolveCommand } from './resolve.js';

/** Where setup writes its system files; overridable so that tests and packagers can point elsewhere. */
export interface SetupLocations {
  /** sudo's include directory. */
  sudoersDir: string;
  /** Root-owned record of what setup created, so `--remove` undoes exactly that. */
  stateDir: string;
}

export const DEFAULT_LOCATIONS: SetupLocations = Object.freeze({
  sudoersDir: '/etc/sudoers.d',
  stateDir: '/var/lib/adi-daemon',
});

/** User names setup accepts and writes into sudoers: useradd's default NAME_REGEX, nothing to escape. */
export const USER_NAME_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
/** The admin is an existing account, so a little more is allowed (still nothing sudoers must escape). */
export const ADMIN_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

/**
 * The sudoers file for one ADI_USER. Named from the user so that test users never clash with the real
 * ones; sudo skips include files whose names contain '.' or end in '~', so only [A-Za-z0-9_-] is kept.
 */
export function sudoersFileName(adiUser: string): string {
  return `adi-daemon-${adiUser.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** `/var/lib/adi-daemon/plugins/<ADI_USER>`: created by `adi daemon setup`, owned by the admin. */
export function sharedPluginsDir(adiUser: string, stateDir: string = DEFAULT_LOCATIONS.stateDir): string {
  return path.posix.join(stateDir, 'plugins', adiUser.replace(/[^A-Za-z0-9_-]/g, '_'));
}

export function sudoersFilePath(adiUser: string, loc: SetupLocations = DEFAULT_LOCATIONS): string {
  return path.posix.join(loc.sudoersDir, sudoersFileName(adiUser));
}

export function manifestPath(adiUser: string, loc: SetupLocations = DEFAULT_LOCATIONS): string {
  return path.posix.join(loc.stateDir, `setup-${adiUser.replace(/[^A-Za-z0-9_-]/g, '_')}.json`);
}

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

function parsePasswdLine(line: string): UserEntry | null {
  const f = line.split(':');
  if (f.length < 7) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) return null;
  return { name: f[0] as string, uid, gid, home: f[5] as string, shell: f[6] as string };
}

/**
 * The passwd entry of `name` (through NSS with getent, so LDAP/sssd users count; /etc/passwd when
 * getent is missing), or null. A numeric name is refused: getent would look it up as a uid.
 */
export function lookupUser(name: string): UserEntry | null {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) return null;
  let getent: string | null = null;
  try {
    getent = resolveCommand('getent');
  } catch {
    getent = null;
  }
  if (getent !== null) {
    const r = spawnSync(getent, ['passwd', name], { env: cleanEnv(), encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) {
      const entry = parsePasswdLine(r.stdout.trim().split('\n')[0] ?? '');
      return entry !== null && entry.name === name ? entry : null;
    }
    if (r.status === 2) return null; // getent: key not found
  }
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const entry = parsePasswdLine(line);
      if (entry !== null && entry.name === name) return entry;
    }
  } catch {
    // no passwd file (not Linux): no such user
  }
  return null;
}

/** Whether a group exists (getent group; /etc/group as a fallback). */
export function groupExists(name: string): boolean {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) return false;
  try {
    const r = spawnSync(resolveCommand('getent'), ['group', name], {
      env: cleanEnv(),
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status === 0) return r.stdout.split(':')[0] === name;
    if (r.status === 2) return false;
  } catch {
    // fall through to the file
  }
  try {
    return fs
      .readFileSync('/etc/group', 'utf8')
      .split('\n')
      .some((l) => l.split(':')[0] === name);
  } catch {
    return false;
  }
}

export interface SeparationStatus {
  active: boolean;
  /** Why it is (in)active, for `adi daemon status` and the daemon log. */
  reason: string;
}

/**
 * Separation is active when both users exist and the sudoers file setup writes is there. Without it
 * the daemon runs everything as its own user and refuses SudoRun.
 */
export function separationStatus(
  paths: Pick<Paths, 'adiUser' | 'adiRootUser'>,
  loc: SetupLocations = DEFAULT_LOCATIONS,
): SeparationStatus {
  const setupHint = 'run `sudo adi daemon setup` to set it up';
  if (process.platform !== 'linux') {
    return { active: false, reason: `privilege separation is only supported on Linux (this is ${process.platform})` };
  }
  const adi = lookupUser(paths.adiUser);
  const root = lookupUser(paths.adiRootUser);
  const missing = [adi === null ? paths.adiUser : null, root === null ? paths.adiRootUser : null].filter(
    (x) => x !== null,
  );
  if (missing.length > 0) {
    return {
      active: false,
      reason: `user${missing.length > 1 ? 's' : ''} ${missing.join(' and ')} do${missing.length > 1 ? '' : 'es'} not exist; ${setupHint}`,
    };
  }
  if (adi !== null && adi.uid === process.getuid?.()) {
    return {
      active: false,
      reason: `the daemon itself runs as ${paths.adiUser}, the plugin user: nothing would separate it from plugins. Run the daemon as its admin.`,
    };
  }
  const file = sudoersFilePath(paths.adiUser, loc);
  let present: boolean;
  try {
    fs.statSync(file);
    present = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A locked-down sudoers.d (0750) hides the file from non-root; setup's world-readable manifest says.
    present = code === 'EACCES' && fs.existsSync(manifestPath(paths.adiUser, loc));
  }
  if (!present) {
    return { active: false, reason: `${file} is missing; ${setupHint}` };
  }
  return { active: true, reason: `users ${paths.adiUser} and ${paths.adiRootUser} exist and ${file} is installed` };
}

// The only place a sudo argv is built. `-n`: never prompt (a missing rule fails at once); `--`: nothing
// after it is read as a sudo option. sudo's env_reset drops the environment unless the keys are named
// in --preserve-env: the admin's sudoers rule has the command ALL, which implies SETENV (sudoers(5)), and
// the values never appear on a command line (where any user could read a token in /proc/<pid>/cmdline).

/** sudo's --preserve-env takes a comma-separated list: a name with a comma cannot be carried. */
function preserveArg(envKeys: readonly string[]): string[] {
  return envKeys.length > 0 ? [`--preserve-env=${envKeys.join(',')}`] : [];
}

/** `file args...` as `user` through sudo: Run and services as ADI_USER when the daemon is not root. */
export function sudoAsArgv(
  sudo: string,
  user: string,
  file: string,
  args: readonly string[],
  envKeys: readonly string[] = [],
): string[] {
  return [sudo, '-n', ...preserveArg(envKeys), '-u', user, '--', file, ...args];
}

/** The SudoRun chain: become ADI_ROOT_USER, whose own sudo rule runs the command as root. */
export function rootChainArgv(
  sudo: string,
  rootUser: string,
  file: string,
  args: readonly string[],
  envKeys: readonly string[] = [],
): string[] {
  return [
    sudo,
    '-n',
    ...preserveArg(envKeys),
    '-u',
    rootUser,
    '--',
    sudo,
    '-n',
    ...preserveArg(envKeys),
    '--',
    file,
    ...args,
  ];
}

/**
 * The whole environment a command gets: nothing from the daemon or the caller (no LD_PRELOAD, no
 * caller PATH, no tokens). sudo resets it again (env_reset), which is fine.
 */
export function cleanEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { PATH: SECURE_PATH, LANG: 'C.UTF-8', HOME: '/', ...extra };
}
