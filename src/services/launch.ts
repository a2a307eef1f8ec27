// Every parameter of a service's spawn is decided here and only here: program, argv, environment, cwd,
// stdio; who it runs as is planned by system/run-as.ts (ADI_USER, or root through ADI_ROOT_USER's sudo
// when privileged), as for Run and SudoRun.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { SpawnOptions } from 'node:child_process';
import { AdiError } from '../core/errors.js';
import { cleanEnv } from '../system/privilege.js';
import { resolveCommand } from '../system/resolve.js';
import type { ProcessLimits } from '../system/rlimits.js';
import { runHelper } from '../system/run.js';
import type { NormalizedConfig } from '../protocol/config-schema.js';
import { PLUGIN_RULES } from './config.js';
import type { ServiceDefinition } from './registry.js';
import { DAEMON_INSTANCE_ENV, SERVICE_ID_ENV, SERVICE_NAME_ENV } from '../system/process-group.js';
import { SELF, commandArgv, limitsFor, planRunAs, type RunAs, type ServicePrivilege } from '../system/run-as.js';

/** The ADI_DAEMON_INSTANCE value of a data dir: 32 hex digits of the SHA-256 of its real path. */
export function daemonInstance(dataDir: string): string {
  let real: string;
  try {
    real = fs.realpathSync(dataDir);
  } catch {
    real = path.resolve(dataDir);
  }
  return crypto.createHash('sha256').update(real).digest('hex').slice(0, 32);
}
/** Names the fd the service writes its readiness line to (s6-style notification fd). */
export const READY_FD_ENV = 'ADI_READY_FD';
export const READY_FD = 3;
/** A plugin service's identity token and the socket it reaches the daemon on (DaemonClient reads both). */
export const TOKEN_ENV = 'ADI_DAEMON_TOKEN';
export const SOCKET_ENV = 'ADI_DAEMON_SOCKET';
/** Where a separated service runs without a working_dir: every user can enter `/` (the admin's home may be 0700). */
export const SEPARATED_CWD = '/';

export interface LaunchContext {
  /** The environment children start from (the daemon's own by default). */
  baseEnv: NodeJS.ProcessEnv;
  /** cwd when the service names no working_dir. */
  home: string;
  /** This run's marker value (see newRunId). */
  runId: string;
  /** Where the definition came from; a plugin's service gets its identity token. Absent: not a plugin. */
  def?: Pick<ServiceDefinition, 'source' | 'plugin'>;
  /** The daemon's privilege facts; absent (library use, unit tests): run as the daemon's user. */
  privilege?: ServicePrivilege;
  /** The value of ADI_DAEMON_INSTANCE (see daemonInstance); absent: none is set. */
  instance?: string;
}

export interface Launch {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** The fd the child may write its ready line to, or null without ready_notify. */
  readyFd: number | null;
  options: SpawnOptions;
  /** Who it runs as; `file`/`args` above are already wrapped for it (sudo modes). */
  runAs: RunAs;
  /** The program and arguments as configured (before any sudo wrapping), for messages and the audit. */
  command: string[];
  /** The plugin whose identity the service carries, or null. */
  plugin: string | null;
  /** The rlimits it starts under (through prlimit; see system/rlimits.ts). */
  limits: ProcessLimits;
  /** Wraps another command (a health probe) to run as the service does, with its environment. */
  wrap(file: string, args: readonly string[]): { file: string; args: string[] };
  /** Signals a process group with the service's rights when the daemon may not (sudo modes); else null. */
  signalVia: ((pgid: number, signal: NodeJS.Signals) => void) | null;
}

/** A fresh marker per run: unguessable, so no unrelated process carries it by chance. */
export function newRunId(): string {
  return crypto.randomBytes(16).toString('hex');
}

/** The plugin a definition belongs to: its `plugin` field, else (a source that sets none) its name. */
export function pluginOf(def: Pick<ServiceDefinition, 'source' | 'plugin'> | undefined, name: string): string | null {
  if (def?.source !== 'plugin') return null;
  return def.plugin ?? name;
}

/**
 * The rlimits a service starts under. A plugin's service always has a process limit (its config's, or
 * the plugin default), applied where it runs as ADI_USER (see limitsFor).
 */
export function processLimits(
  config: Pick<NormalizedConfig, 'pids_max' | 'memory_max'>,
  plugin: string | null,
  mode: RunAs['mode'],
): ProcessLimits {
  return limitsFor(
    mode,
    config.pids_max ?? (plugin !== null ? PLUGIN_RULES.pids_max.default : null),
    config.memory_max,
  );
}

/**
 * Throws AdiError when the service cannot start as it must (see run-as.ts); the service then fails
 * with that message.
 */
export function buildLaunch(name: string, config: NormalizedConfig, ctx: LaunchContext): Launch {
  const plugin = pluginOf(ctx.def, name);
  if (plugin !== null && config.privileged) {
    // Also refused when the definition is loaded (registry.ts); this is the last line of defence.
    throw new AdiError(
      'PERMISSION_DENIED',
      `Service "${name}" comes from plugin ${plugin}, and a plugin's service can never be privileged.`,
    );
  }
  const p = ctx.privilege;
  const runAs = p === undefined ? SELF : planRunAs(p, config.privileged, name);

  const env: Record<string, string> = {};
  if (runAs.mode === 'self') {
    // Embedded mode: as before separation existed, the daemon's own environment.
    for (const [key, value] of Object.entries(ctx.baseEnv)) {
      if (value !== undefined) env[key] = value;
    }
    Object.assign(env, config.env);
    const socket = p?.socketFor('admin') ?? null;
    if (plugin !== null && socket !== null) env[SOCKET_ENV] = socket;
  } else {
    // An environment of its own: nothing of the admin's (their HOME, tokens, agent sockets).
    Object.assign(env, cleanEnv({ USER: runAs.user, LOGNAME: runAs.user }), config.env);
    delete env[TOKEN_ENV];
    const socket = p?.socketFor(runAs.mode === 'root-chain' ? 'admin' : 'plugin') ?? null;
    if (socket !== null) env[SOCKET_ENV] = socket;
    else delete env[SOCKET_ENV];
  }
  if (plugin !== null && p !== undefined) env[TOKEN_ENV] = p.pluginToken(plugin);
  // Set last so a service's env table cannot forge the marker (the sweep relies on it) or the fd.
  env[SERVICE_ID_ENV] = ctx.runId;
  env[SERVICE_NAME_ENV] = name;
  delete env[DAEMON_INSTANCE_ENV];
  if (ctx.instance !== undefined) env[DAEMON_INSTANCE_ENV] = ctx.instance;
  delete env[READY_FD_ENV];
  const readyFd = config.ready_notify ? READY_FD : null;
  if (readyFd !== null) env[READY_FD_ENV] = String(readyFd);

  const cwd = config.working_dir ?? (runAs.mode === 'self' ? ctx.home : SEPARATED_CWD);
  // Root runs only what the secure PATH (or an absolute path) names, as SudoRun does.
  const file = runAs.mode === 'root-chain' ? resolveCommand(config.command) : config.command;
  const limits = processLimits(config, plugin, runAs.mode);
  const what = `Service "${name}"`;
  let keys: string[] = [];
  if (runAs.mode === 'sudo' || runAs.mode === 'root-chain') {
    if (readyFd !== null) {
      throw new AdiError(
        'BAD_CONFIG',
        `${what} uses ready_notify, which cannot work through sudo (it closes descriptors above 2); use a readiness probe instead.`,
      );
    }
    keys = Object.keys(env).filter((k) => k !== 'USER' && k !== 'LOGNAME');
    const bad = keys.find((k) => k.includes(','));
    if (bad !== undefined) {
      throw new AdiError(
        'BAD_CONFIG',
        `${what}: the environment variable name ${JSON.stringify(bad)} contains ',', which sudo's --preserve-env cannot carry; rename it.`,
      );
    }
  }
  const argv = commandArgv(runAs, limits, file, config.args, keys, what);
  const wrap = (f: string, a: readonly string[]): { file: string; args: string[] } => runAs.wrap(f, a, keys);
  const killer = runAs.killer;
  const helperEnv = cleanEnv();
  return {
    file: argv.file,
    args: argv.args,
    cwd,
    env,
    readyFd,
    runAs,
    command: [file, ...config.args],
    plugin,
    limits,
    wrap,
    signalVia: killer === null ? null : (pgid, signal) => runHelper(killer(pgid, signal), helperEnv),
    options: {
      cwd,
      env,
      // Own session and process group: a stop signals the whole group, and the service gets no
      // controlling terminal from the daemon.
      detached: true,
      stdio: readyFd !== null ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
      ...(runAs.uid !== undefined ? { uid: runAs.uid } : {}),
      ...(runAs.gid !== undefined ? { gid: runAs.gid } : {}),
    },
  };
}
