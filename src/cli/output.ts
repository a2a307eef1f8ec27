// How the CLI turns errors into exit codes and a next step, and small formatting helpers.

import type { AdiError, ErrorCode } from '../core/errors.js';
import { resolvePaths } from '../core/paths.js';

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

/** Where the daemon logs, for hints; the default spelled out if the environment cannot be resolved. */
function daemonLog(env: NodeJS.ProcessEnv): string {
  try {
    return resolvePaths({ env }).logFile;
  } catch {
    return '~/.local/share/adi/logs/daemon.log';
  }
}

const OTHER_VERSION =
  "hint: the daemon may be of another version: 'adi daemon status' shows it, 'adi daemon start' replaces it.";

/** The next step for each code (every error names one). `log` is the daemon's log file. */
function hintText(code: ErrorCode, log: () => string): string | null {
  switch (code) {
    case 'DAEMON_NOT_RUNNING':
      return "hint: 'adi daemon start' starts it; 'adi daemon status' shows the socket adi looks for (ADI_DAEMON_SOCKET overrides it).";
    case 'DAEMON_START_FAILED':
      return "hint: 'adi daemon run' runs it in the foreground, so you see why it stops.";
    case 'CONNECTION_CLOSED':
      return `hint: the daemon closed the connection (stopped or crashed?): 'adi daemon status' checks it; its log is ${log()}.`;
    case 'TIMEOUT':
      return `hint: the daemon may be overloaded or hung; 'adi daemon status' checks it, its log is ${log()}.`;
    case 'VERSION_MISMATCH':
      return "hint: 'adi daemon start' replaces a daemon of another version.";
    case 'BAD_FRAME':
    case 'FRAME_TOO_LARGE':
    case 'BAD_REQUEST':
    case 'UNKNOWN_REQUEST':
    case 'NOT_IMPLEMENTED':
      return OTHER_VERSION;
    case 'UNAUTHORIZED':
      return 'hint: this needs the admin: run adi as the user who started the daemon (it reads the token file in the data directory).';
    case 'PERMISSION_DENIED':
      return 'hint: run adi as the user the daemon belongs to, or set ADI_DAEMON_SOCKET to your own daemon.';
    case 'SHUTTING_DOWN':
      return "hint: wait until 'adi daemon status' says it is not running, then 'adi daemon start'.";
    case 'SLOW_CONSUMER':
      return 'hint: run the command again to resume; a pipe that is read slowly (a pager) causes this.';
    case 'BAD_CONFIG':
      return "hint: fix the option, file or field named above; after editing services.toml, 'adi daemon reload' applies it.";
    case 'PATH_TOO_LONG':
    case 'BAD_ARGUMENT':
    case 'BAD_SERVICE_NAME':
      return null; // their messages say what to change
    case 'SERVICE_NOT_FOUND':
      return "hint: 'adi daemon services' lists the services the daemon knows.";
    case 'SERVICE_EXISTS':
      return "hint: 'adi daemon services' shows it; stop it first ('adi daemon stop NAME') or choose another name.";
    case 'SPAWN_FAILED':
      return "hint: 'adi daemon logs NAME' shows what it printed; fix the command or working_dir, then start it again.";
    case 'COMMAND_NOT_FOUND':
      return 'hint: give the command as an absolute path, or check that it is installed.';
    case 'COMMAND_TIMEOUT':
      return 'hint: give it a longer timeout, or check why it hangs by running it by hand.';
    case 'OUTPUT_TOO_LARGE':
      return 'hint: ask for a larger output bound, or have the command write to a file.';
    case 'TOO_MANY_COMMANDS':
      return 'hint: wait for the running commands to finish, or run fewer at once.';
    case 'SUDO_DENIED':
      return "hint: only approved commands run as root; 'sudo adi daemon setup' sets up the users, and a plugin's commands are approved when it is installed.";
    case 'CANCELLED':
      return null;
    case 'BAD_MANIFEST':
      return 'hint: fix the package.json\'s "adi" key named above and install again.';
    case 'PLUGIN_NOT_FOUND':
      return 'hint: check the name; a plugin is a folder or npm package with an "adi" key in its package.json.';
    case 'INTERNAL':
      return `hint: this is a bug in adi; the daemon's log (${log()}) has details. Please report it.`;
    default:
      return null;
  }
}

/**
 * One line naming the next step, where the message itself does not already (a message that quotes an
 * adi command has its next step in it).
 */
export function hintFor(err: AdiError, env: NodeJS.ProcessEnv = process.env): string | null {
  if (/['`]adi [a-z]/.test(err.message)) return null;
  return hintText(err.code, () => daemonLog(env));
}

export function formatDuration(totalSecs: number): string {
  const s = Math.floor(totalSecs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

/** Bytes for a table column: 1023B, 12.5K, 340M, 1.2G (binary units, as top and ps show them). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 || value >= 100 ? String(Math.round(value)) : value.toFixed(1);
  return `${shown}${units[unit]}`;
}
