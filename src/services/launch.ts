// Every parameter of a service's spawn is decided here and only here: program, argv, environment, cwd,
// stdio. The privilege issue changes who a service runs as (sudo -u adi / adi-root) in this one place.

import crypto from 'node:crypto';
import type { SpawnOptions } from 'node:child_process';
import type { NormalizedConfig } from './config.js';

/** The marker every process of a run inherits; the stop sweep finds double-forked children by it. */
export const SERVICE_ID_ENV = 'ADI_SERVICE_ID';
export const SERVICE_NAME_ENV = 'ADI_SERVICE_NAME';
/** Names the fd the service writes its readiness line to (s6-style notification fd). */
export const READY_FD_ENV = 'ADI_READY_FD';
export const READY_FD = 3;

export interface LaunchContext {
  /** The environment children start from (the daemon's own by default). */
  baseEnv: NodeJS.ProcessEnv;
  /** cwd when the service names no working_dir. */
  home: string;
  /** This run's marker value (see newRunId). */
  runId: string;
}

export interface Launch {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** The fd the child may write its ready line to, or null without ready_notify. */
  readyFd: number | null;
  options: SpawnOptions;
}

/** A fresh marker per run: unguessable, so no unrelated process carries it by chance. */
export function newRunId(): string {
  return crypto.randomBytes(16).toString('hex');
}

export function buildLaunch(name: string, config: NormalizedConfig, ctx: LaunchContext): Launch {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(ctx.baseEnv)) {
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, config.env);
  // Set last so a service's env table cannot forge the marker (the sweep relies on it) or the fd.
  env[SERVICE_ID_ENV] = ctx.runId;
  env[SERVICE_NAME_ENV] = name;
  delete env[READY_FD_ENV];
  const readyFd = config.ready_notify ? READY_FD : null;
  if (readyFd !== null) env[READY_FD_ENV] = String(readyFd);

  const cwd = config.working_dir ?? ctx.home;
  // `privileged` is not applied yet: until the privilege issue lands (and in embedded mode, where no
  // adi users exist) every service runs as the daemon's user.
  return {
    file: config.command,
    args: [...config.args],
    cwd,
    env,
    readyFd,
    options: {
      cwd,
      env,
      // Own session and process group: a stop signals the whole group, and the service gets no
      // controlling terminal from the daemon.
      detached: true,
      stdio: readyFd !== null ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    },
  };
}
