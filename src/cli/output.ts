// How the CLI turns errors into exit codes and a next step, and small formatting helpers.

import type { AdiError } from '../errors.js';

/** 0 ok, 1 failure, 2 usage error, 3 the daemon is not running. */
export function exitCodeFor(err: AdiError): number {
  switch (err.code) {
    case 'BAD_ARGUMENT':
      return 2;
    case 'DAEMON_NOT_RUNNING':
      return 3;
    default:
      return 1;
  }
}

/** One line naming the next step, where the message itself does not already. */
export function hintFor(err: AdiError): string | null {
  switch (err.code) {
    case 'SERVICE_NOT_FOUND':
      return "hint: 'adi daemon services' lists the services the daemon knows.";
    case 'TIMEOUT':
      return "hint: the daemon may be overloaded or hung; 'adi daemon status' checks it, its log is in ~/.local/share/adi/logs/daemon.log.";
    case 'VERSION_MISMATCH':
      return "hint: 'adi daemon start' replaces a daemon of another version.";
    case 'PERMISSION_DENIED':
      return null;
    default:
      return null;
  }
}

export function formatDuration(totalSecs: number): string {
  const s = Math.floor(totalSecs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}
