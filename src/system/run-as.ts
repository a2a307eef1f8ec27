// Who a command runs as: the one planner for services (launch.ts), Run and SudoRun (executor.ts).
// "Plugins run as adi".
//
//   no separation          the daemon's user
//   separation, not privileged
//     daemon is root       ADI_USER by uid/gid (libuv drops supplementary groups)
//     daemon is the admin  `sudo -n [--preserve-env=<keys>] -u ADI_USER -- cmd args`
//   separation, privileged (SudoRun, an admin-defined privileged service)
//                          `sudo -n [--preserve-env=<keys>] -u ADI_ROOT_USER -- sudo -n [--preserve-env=<keys>] -- /abs/cmd args`
//                          (also from a root daemon), audited
//
// Process limits (prlimit) go inside the sudo chain: sudo's PAM session may reset rlimits set before it.
//
// Stopping: a process of another user may not be signalled by a non-root daemon (EPERM), so each plan
// also carries a `killer`: the argv that signals the group with the same rights it was started with.

import os from 'node:os';
import type { Argv } from './run.js';
import {
  DEFAULT_LOCATIONS,
  cleanEnv,
  lookupUser,
  rootChainArgv,
  separationStatus,
  sudoAsArgv,
  type SeparationStatus,
  type SetupLocations,
  type UserEntry,
} from './privilege.js';
import { resolveCommand } from './resolve.js';
import { PLUGIN_PIDS_DEFAULT, limitedArgv, type ProcessLimits } from './rlimits.js';
import { AdiError } from '../core/errors.js';
import type { Paths } from '../core/paths.js';

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

/** The privilege facts a plan is made from (PrivilegeFacts on the daemon; a literal in tests). */
export interface RunAsFacts {
  separation(): SeparationStatus;
  adiUser: string;
  adiRootUser: string;
  /** ADI_USER's passwd entry (null when it vanished). */
  adiEntry(): UserEntry | null;
  /** Whether the daemon runs as root (then it switches uid itself and may signal anyone). */
  isRoot: boolean;
  /** The daemon's own user name (for messages and the audit's `as`). */
  selfUser: string;
  /** Absolute paths of sudo and kill from the secure PATH, or null when missing. */
  readonly sudo: string | null;
  readonly kill: string | null;
}

/** What the daemon tells launch.ts about privilege; absent (tests, embedded library use) = self. */
export interface ServicePrivilege extends RunAsFacts {
  /** The address a service should use in ADI_DAEMON_SOCKET: `plugin` for separated services. */
  socketFor(kind: 'admin' | 'plugin'): string | null;
  /** The plugin's identity token (stable for the daemon's lifetime). */
  pluginToken(plugin: string): string;
  /** Audit a privileged service start. */
  auditPrivileged(entry: {
    service: string;
    argv: readonly string[];
    result: { pid: number } | { error: string; message: string };
  }): void;
}

function optionalCommand(name: string): string | null {
  try {
    return resolveCommand(name);
  } catch {
    return null;
  }
}

/** The daemon's own user name. */
export function selfUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/**
 * The daemon's facts: the separation status as last checked and ADI_USER's passwd entry (one cache,
 * dropped at each check). sudo and kill are looked up in the secure PATH when asked.
 */
export class PrivilegeFacts implements RunAsFacts {
  readonly adiUser: string;
  readonly adiRootUser: string;
  readonly isRoot = process.getuid?.() === 0;
  readonly selfUser = selfUserName();
  private readonly paths: Pick<Paths, 'adiUser' | 'adiRootUser'>;
  private readonly locations: SetupLocations;
  private status: SeparationStatus;
  private entry: UserEntry | null | undefined;

  constructor(
    paths: Pick<Paths, 'adiUser' | 'adiRootUser'>,
    locations: SetupLocations = DEFAULT_LOCATIONS,
    known?: SeparationStatus,
  ) {
    this.paths = paths;
    this.adiUser = paths.adiUser;
    this.adiRootUser = paths.adiRootUser;
    this.locations = locations;
    this.status = known ?? separationStatus(paths, locations);
  }

  separation(): SeparationStatus {
    return this.status;
  }

  /** Checks the system again (after `adi daemon setup` ran while the daemon was up). */
  refresh(): SeparationStatus {
    this.status = separationStatus(this.paths, this.locations);
    this.entry = undefined;
    return this.status;
  }

  adiEntry(): UserEntry | null {
    if (this.entry === undefined) this.entry = lookupUser(this.adiUser);
    return this.entry;
  }

  get sudo(): string | null {
    return optionalCommand('sudo');
  }

  get kill(): string | null {
    return optionalCommand('kill');
  }
}

export const SELF: RunAs = {
  mode: 'self',
  user: 'self',
  wrap: (file, args) => ({ file, args: [...args] }),
  killer: null,
};

function argvOf(list: string[]): Argv {
  const [file, ...args] = list as [string, ...string[]];
  return { file, args };
}

function killArgs(pgid: number, signal: NodeJS.Signals): string[] {
  return [`-${signal.replace(/^SIG/, '')}`, '--', `-${pgid}`];
}

/**
 * How a command runs now; `name` is the service's (messages say "commands" without one). Throws
 * AdiError when it cannot run as required: privileged without separation, sudo missing, the plugin
 * user gone.
 */
export function planRunAs(p: RunAsFacts | undefined, privileged: boolean, name?: string): RunAs {
  const subject = name === undefined ? 'commands' : `service "${name}"`;
  const Subject = name === undefined ? 'This command' : `Service "${name}"`;
  const sep = p?.separation();
  if (p === undefined || sep === undefined || !sep.active) {
    if (privileged) {
      throw new AdiError(
        'BAD_CONFIG',
        `${Subject} is privileged (it runs as root through ${p?.adiRootUser ?? 'adi-root'}'s sudo), but privilege separation is not set up (${sep?.reason ?? 'unknown'}). Run \`sudo adi daemon setup\`, or remove privileged = true.`,
      );
    }
    return { ...SELF, user: p?.selfUser ?? 'self' };
  }
  if (privileged) {
    const sudo = p.sudo;
    if (sudo === null) throw new AdiError('BAD_CONFIG', `${Subject} is privileged, but sudo is not installed.`);
    const kill = p.kill;
    return {
      mode: 'root-chain',
      user: 'root',
      wrap: (file, args, keys) => argvOf(rootChainArgv(sudo, p.adiRootUser, file, args, keys)),
      // A root daemon signals anyone itself.
      killer:
        p.isRoot || kill === null
          ? null
          : (pgid, signal) => argvOf(rootChainArgv(sudo, p.adiRootUser, kill, killArgs(pgid, signal), [])),
    };
  }
  if (p.isRoot) {
    const entry = p.adiEntry();
    if (entry === null)
      throw new AdiError(
        'BAD_CONFIG',
        `The plugin user ${p.adiUser} no longer exists; run \`sudo adi daemon setup\` again.`,
      );
    return { mode: 'uid', user: p.adiUser, uid: entry.uid, gid: entry.gid, wrap: SELF.wrap, killer: null };
  }
  const sudo = p.sudo;
  if (sudo === null)
    throw new AdiError('BAD_CONFIG', `sudo is not installed, so ${subject} cannot run as ${p.adiUser}; install it.`);
  const kill = p.kill;
  return {
    mode: 'sudo',
    user: p.adiUser,
    wrap: (file, args, keys) => argvOf(sudoAsArgv(sudo, p.adiUser, file, args, keys)),
    killer:
      kill === null ? null : (pgid, signal) => argvOf(sudoAsArgv(sudo, p.adiUser, kill, killArgs(pgid, signal), [])),
  };
}

/**
 * RLIMIT_NPROC counts per real uid, so a process limit is set only where that uid is ADI_USER ('uid' /
 * 'sudo'): root ignores it, and in embedded mode ('self') it would count every process of the admin's
 * own user. The memory limit is per process and applies in every mode.
 */
export function limitsFor(mode: RunAsMode, pids: number | null, data: number | null): ProcessLimits {
  return { nproc: mode === 'uid' || mode === 'sudo' ? pids : null, data };
}

/**
 * The argv that starts `file args` as `runAs` under `limits`: prlimit first, then the sudo chain
 * around it. `what` names the service or command when prlimit is missing.
 */
export function commandArgv(
  runAs: RunAs,
  limits: ProcessLimits,
  file: string,
  args: readonly string[],
  envKeys: readonly string[],
  what: string,
): Argv {
  const limited = limitedArgv(limits, file, args, what);
  return runAs.wrap(limited.file, limited.args, envKeys);
}

/** A Run or SudoRun command, ready for runCommand. */
export interface CommandPlan {
  mode: RunAsMode;
  argv: Argv;
  /** Who it runs as, for the audit log. */
  as: string;
  uid?: number;
  gid?: number;
  /** Nothing from the daemon or the caller (no LD_PRELOAD, no caller PATH, no tokens). */
  env: Record<string, string>;
  /** SIGKILLs the group with the command's rights, for a daemon that may not (sudo modes). */
  groupKiller?: (pgid: number) => Argv;
}

/**
 * Run (`privileged` false: ADI_USER, or the daemon's user without separation) and SudoRun (true: root
 * through ADI_ROOT_USER's sudo). A plugin's Run gets the plugin process limit. Throws AdiError as
 * planRunAs does.
 */
export function planCommand(
  facts: RunAsFacts,
  privileged: boolean,
  plugin: boolean,
  file: string,
  args: readonly string[],
): CommandPlan {
  const runAs = planRunAs(facts, privileged);
  const argv = commandArgv(
    runAs,
    limitsFor(runAs.mode, plugin ? PLUGIN_PIDS_DEFAULT : null, null),
    file,
    args,
    [],
    'This command',
  );
  // Root becomes ADI_USER by uid/gid, without sudo to set USER and LOGNAME.
  const env = runAs.mode === 'uid' ? cleanEnv({ USER: runAs.user, LOGNAME: runAs.user }) : cleanEnv();
  const killer = runAs.killer;
  return {
    mode: runAs.mode,
    argv,
    as: runAs.user,
    env,
    ...(runAs.uid !== undefined ? { uid: runAs.uid } : {}),
    ...(runAs.gid !== undefined ? { gid: runAs.gid } : {}),
    ...(killer !== null ? { groupKiller: (pgid: number) => killer(pgid, 'SIGKILL') } : {}),
  };
}
