// Who a service runs as (issue 4 item 6), decided for launch.ts. The seed: "plugins run as adi".
//
//   no separation          the daemon's user, the daemon's environment (embedded mode: as before)
//   separation, not privileged
//     daemon is root       ADI_USER by uid/gid (libuv drops supplementary groups)
//     daemon is the admin  `sudo -n --preserve-env=<keys> -u ADI_USER -- cmd args`
//   separation, privileged (admin-defined only)
//                          `sudo -n --preserve-env=<keys> -u ADI_ROOT_USER -- sudo -n --preserve-env=<keys> -- /abs/cmd args`
//                          (the seed's SudoRun chain, also from a root daemon), audited
//
// A separated service gets an environment of its own, not the daemon's: cleanEnv() (secure PATH,
// LANG, HOME=/), its USER/LOGNAME, the service's env table, the socket it can reach, a plugin's token,
// and the markers. sudo's env_reset would drop all of that, so the keys are named in --preserve-env:
// the admin's sudoers rule has the command ALL, which implies SETENV (sudoers(5)), and the values never
// appear on a command line (where any user could read a token in /proc/<pid>/cmdline).
//
// Stopping: a process of another user may not be signalled by a non-root daemon (EPERM), so each run
// also carries a `killer`: the argv that signals the group with the same rights it was started with.

import { spawn } from 'node:child_process';
import type { Argv } from './run.js';
import type { SeparationStatus, UserEntry } from './privilege.js';
import { AdiError } from '../core/errors.js';

export type RunAsMode = 'self' | 'uid' | 'sudo' | 'root-chain';

export interface RunAs {
  mode: RunAsMode;
  /** The user the service runs as: the daemon's user name, ADI_USER or "root". */
  user: string;
  uid?: number;
  gid?: number;
  /** The argv that actually starts `file args` for this user (sudo modes); identity for the others. */
  wrap(file: string, args: readonly string[], envKeys: readonly string[]): Argv;
  /**
   * The argv that sends `signal` to process group `pgid` with this user's rights, for a daemon that
   * may not signal it itself; null when a direct kill(2) is enough.
   */
  killer: ((pgid: number, signal: NodeJS.Signals) => Argv) | null;
}

/** What the daemon tells launch.ts about privilege; absent (tests, embedded library use) = self. */
export interface ServicePrivilege {
  separation(): SeparationStatus;
  adiUser: string;
  adiRootUser: string;
  /** ADI_USER's passwd entry (null when it vanished). */
  adiEntry(): UserEntry | null;
  /** Whether the daemon runs as root (then it switches uid itself and may signal anyone). */
  isRoot: boolean;
  /** The daemon's own user name (for messages). */
  selfUser: string;
  /** Absolute paths of sudo and kill from the secure PATH, or null when missing. */
  sudo: string | null;
  kill: string | null;
  /** The address a service should use in ADI_DAEMON_SOCKET: `plugin` for separated services. */
  socketFor(kind: 'admin' | 'plugin'): string | null;
  /** The plugin's identity token (stable for the daemon's lifetime). */
  pluginToken(plugin: string): string;
  /** Audit a privileged service start (issue 4 item 7). */
  auditPrivileged(entry: { service: string; argv: readonly string[]; result: { pid: number } | { error: string; message: string } }): void;
}

export const SELF: RunAs = {
  mode: 'self',
  user: 'self',
  wrap: (file, args) => ({ file, args: [...args] }),
  killer: null,
};

/** sudo's --preserve-env takes a comma-separated list: a name with a comma cannot be carried. */
function preserveArg(envKeys: readonly string[]): string[] {
  return envKeys.length > 0 ? [`--preserve-env=${envKeys.join(',')}`] : [];
}

export function sudoAsArgv(sudo: string, user: string, file: string, args: readonly string[], envKeys: readonly string[]): string[] {
  return [sudo, '-n', ...preserveArg(envKeys), '-u', user, '--', file, ...args];
}

export function rootChainArgv(sudo: string, rootUser: string, file: string, args: readonly string[], envKeys: readonly string[]): string[] {
  return [sudo, '-n', ...preserveArg(envKeys), '-u', rootUser, '--', sudo, '-n', ...preserveArg(envKeys), '--', file, ...args];
}

function argvOf(list: string[]): Argv {
  const [file, ...args] = list as [string, ...string[]];
  return { file, args };
}

function killArgs(pgid: number, signal: NodeJS.Signals): string[] {
  return [`-${signal.replace(/^SIG/, '')}`, '--', `-${pgid}`];
}

/**
 * How a service with this definition runs now. Throws AdiError (the start fails with its message)
 * when it cannot run as required: a privileged service without separation, sudo missing, the plugin
 * user gone.
 */
export function planRunAs(p: ServicePrivilege | undefined, privileged: boolean, name: string): RunAs {
  const sep = p?.separation();
  if (p === undefined || sep === undefined || !sep.active) {
    if (privileged) {
      throw new AdiError('BAD_CONFIG', `Service "${name}" is privileged (it runs as root through ${p?.adiRootUser ?? 'adi-root'}'s sudo), but privilege separation is not set up (${sep?.reason ?? 'unknown'}). Run \`sudo adi daemon setup\`, or remove privileged = true.`);
    }
    return { ...SELF, user: p?.selfUser ?? 'self' };
  }
  if (privileged) {
    const sudo = p.sudo;
    if (sudo === null) throw new AdiError('BAD_CONFIG', `Service "${name}" is privileged, but sudo is not installed.`);
    const kill = p.kill;
    return {
      mode: 'root-chain',
      user: 'root',
      wrap: (file, args, keys) => argvOf(rootChainArgv(sudo, p.adiRootUser, file, args, keys)),
      // A root daemon signals anyone itself.
      killer: p.isRoot || kill === null ? null : (pgid, signal) => argvOf(rootChainArgv(sudo, p.adiRootUser, kill, killArgs(pgid, signal), [])),
    };
  }
  if (p.isRoot) {
    const entry = p.adiEntry();
    if (entry === null) throw new AdiError('BAD_CONFIG', `The plugin user ${p.adiUser} no longer exists; run \`sudo adi daemon setup\` again.`);
    return { mode: 'uid', user: p.adiUser, uid: entry.uid, gid: entry.gid, wrap: SELF.wrap, killer: null };
  }
  const sudo = p.sudo;
  if (sudo === null) throw new AdiError('BAD_CONFIG', `sudo is not installed, so service "${name}" cannot run as ${p.adiUser}; install it.`);
  const kill = p.kill;
  return {
    mode: 'sudo',
    user: p.adiUser,
    wrap: (file, args, keys) => argvOf(sudoAsArgv(sudo, p.adiUser, file, args, keys)),
    killer: kill === null ? null : (pgid, signal) => argvOf(sudoAsArgv(sudo, p.adiUser, kill, killArgs(pgid, signal), [])),
  };
}

/** Bound on one signalling helper (sudo ... kill). */
const HELPER_TIMEOUT_MS = 10_000;

/**
 * Fire-and-forget: run a signalling helper, bounded. Its failure only means the group is gone already
 * (or sudo refused, which the stop's own wait then reports as survivors).
 */
export function runHelper(argv: Argv, env: Record<string, string>): void {
  try {
    const child = spawn(argv.file, argv.args, { env, cwd: '/', stdio: 'ignore', shell: false });
    const timer = setTimeout(() => child.kill('SIGKILL'), HELPER_TIMEOUT_MS);
    timer.unref();
    child.once('error', () => clearTimeout(timer));
    child.once('exit', () => clearTimeout(timer));
  } catch {
    // nothing more to do
  }
}
