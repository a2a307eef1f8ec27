// Process and memory limits for what plugins start (their services, their Run commands). Node cannot
// set a child's rlimits, so the command is started through util-linux's `prlimit`, which sets them on
// itself and then execs the command: same pid, same environment, same file descriptors, one extra
// exec (docs/performance.md has its cost).
//
//   pids   RLIMIT_NPROC: fork and clone fail (EAGAIN) once the user has this many processes and
//          threads. The kernel counts per real uid, so it is applied only where that uid is ADI_USER
//          (all plugins share it); root is exempt, and the admin's own uid (embedded mode) would
//          count their shell and editor too.
//   memory RLIMIT_DATA: each process's private writable memory (heap, anonymous mappings); an
//          allocation past it fails. Per process, not for the whole tree.

import { AdiError } from '../core/errors.js';
import { resolveCommand } from './resolve.js';
import type { Argv } from './run.js';

export interface ProcessLimits {
  /** RLIMIT_NPROC, or null. */
  nproc: number | null;
  /** RLIMIT_DATA in bytes, or null. */
  data: number | null;
}

/**
 * The process limit of a plugin's service when its manifest sets none, and of a plugin's Run commands.
 * RLIMIT_NPROC counts threads too: a Node.js service has about 11.
 */
export const PLUGIN_PIDS_DEFAULT = 512;

function hasLimits(limits: ProcessLimits): boolean {
  return limits.nproc !== null || limits.data !== null;
}

/** prlimit's absolute path from the secure PATH; BAD_CONFIG naming the package when it is missing. */
export function prlimitPath(what: string): string {
  try {
    return resolveCommand('prlimit');
  } catch {
    throw new AdiError(
      'BAD_CONFIG',
      `${what} has a process or memory limit, which is applied with prlimit, and prlimit is not installed; install util-linux.`,
    );
  }
}

/**
 * `file args` started under `limits` (soft and hard alike, so the command cannot raise them again);
 * unchanged without limits. `what` names the service or command in the error when prlimit is missing.
 */
export function limitedArgv(limits: ProcessLimits, file: string, args: readonly string[], what: string): Argv {
  if (!hasLimits(limits)) return { file, args: [...args] };
  const opts: string[] = [];
  if (limits.nproc !== null) opts.push(`--nproc=${limits.nproc}:${limits.nproc}`);
  if (limits.data !== null) opts.push(`--data=${limits.data}:${limits.data}`);
  return { file: prlimitPath(what), args: [...opts, '--', file, ...args] };
}
