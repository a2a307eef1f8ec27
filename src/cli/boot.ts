// Boot integration: a systemd unit on Linux, a launchd property list on macOS, that run
// `adi daemon run` and restart it if it dies. Only text and file placement live here; the command
// module (cli/commands/daemon-install.ts) decides what to print and runs systemctl / launchctl.
//
// Why KillMode=mixed: the daemon stops its services itself on SIGTERM (each with its stop_timeout,
// then SIGKILL), and a service that is stopped under it would be seen as crashed and restarted. With
// the default control-group mode systemd would send SIGTERM to every process of the unit at once; with
// `process` it would leave whatever survives behind. `mixed` sends SIGTERM to the daemon alone and,
// once the daemon has exited (or TimeoutStopSec passed), SIGKILL to anything still left in the unit.
// launchd signals only the job's own process group, and every service runs in its own session, so on
// macOS the daemon alone is asked to stop too.

import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import { SERVICE_CONFIG_SCHEMA } from '../protocol/config-schema.js';
import { daemonOnlyEnv } from '../client/spawn.js';

export type BootScope = 'user' | 'system';
export type BootKind = 'systemd' | 'launchd';

export const UNIT_NAME = 'adi-daemon.service';
export const LAUNCHD_LABEL = 'adi-daemon';

/** The daemon's own settings that a boot-started daemon must see as the installer does (see paths.ts). */
export const CARRIED_ENV = [
  'XDG_DATA_HOME',
  'XDG_CONFIG_HOME',
  'ADI_DAEMON_SOCKET',
  'ADI_DAEMON_PID',
  'ADI_DAEMON_LOG',
  'ADI_USER',
  'ADI_ROOT_USER',
] as const;

/**
 * Seconds the service manager waits for the daemon to stop before killing what is left. The daemon
 * stops its services in parallel, each within its stop_timeout (at most SERVICE_CONFIG_SCHEMA.stop_timeout.max) plus
 * a short kill confirmation; the backstop is above that, so a service's configured grace is honoured.
 */
export const STOP_TIMEOUT_SECS = SERVICE_CONFIG_SCHEMA.stop_timeout.max + 30;

export interface BootInputs {
  platform: NodeJS.Platform;
  scope: BootScope;
  /** The installer's environment: the carried variables and PATH are copied from it. */
  env: NodeJS.ProcessEnv;
  /** The installer's home directory (user scope: where the file goes). */
  home: string;
  /** The account's home from the password database: HOME is written only when the installer's differs. */
  accountHome?: string | null;
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of bin/adi.js. */
  cli: string;
  /** System scope: the account the daemon runs as; null runs it as root. */
  runAs?: string | null;
  /** User scope on macOS: the uid of the gui domain. */
  uid?: number;
  /** Prefix for the system locations (like systemctl --root), for packaging and tests. */
  root?: string | undefined;
  /** The adi version, noted in the file's header. */
  version?: string;
  /** The daemon's log directory (launchd's stdout/stderr file goes there). */
  logsDir?: string;
}

export interface BootPlan {
  kind: BootKind;
  scope: BootScope;
  /** Where the unit or plist goes. */
  file: string;
  text: string;
  /** Links `systemctl enable` makes; uninstall removes them even when systemctl cannot run. */
  enableLinks: string[];
  /** The commands --now runs, in order (each an argv). */
  enable: string[][];
  disable: string[][];
  /** What a person types to enable it (printed when --now is not given). */
  enableShown: string;
  disableShown: string;
}

/** The variables written into the unit: the carried ones that are set, PATH, and HOME if it is not the account's. */
export function carriedEnvironment(
  inputs: Pick<BootInputs, 'env' | 'home' | 'accountHome' | 'scope'>,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const env = inputs.env;
  // A user unit starts with the service manager's HOME (the account's); one set otherwise (tests, a
  // second data set) must be carried or the daemon would look in another data directory.
  if (inputs.scope === 'user' && inputs.accountHome != null && inputs.home !== inputs.accountHome)
    out.push(['HOME', inputs.home]);
  for (const key of CARRIED_ENV) {
    const value = env[key];
    if (value !== undefined && value !== '') out.push([key, value]);
  }
  // The service manager's PATH is a short default; services started by name (node, python) should be
  // found as they are in the installer's shell.
  if (env['PATH']) out.push(['PATH', env['PATH']]);
  // The daemon's own allocator setting, as `adi daemon start` gives it (client/spawn.ts).
  out.push(...daemonOnlyEnv({}));
  for (const [key, value] of out) {
    if (/[\n\r\0]/.test(value))
      throw new AdiError(
        'BAD_CONFIG',
        `${key} contains a line break or NUL byte, which a unit file cannot hold. Unset or fix ${key} and install again.`,
      );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// systemd

/** One ExecStart word: specifiers (%) and variable expansion ($) escaped, quoted when needed. */
export function systemdExecArg(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9/._+:@=,-]+$/.test(escaped) && !/^[@:+!-]/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** One Environment= assignment, quoted (values may hold spaces); % is a specifier there too. */
export function systemdEnvAssignment(key: string, value: string): string {
  return `"${`${key}=${value}`.replace(/%/g, '%%').replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function systemdUnit(inputs: BootInputs): string {
  const scopeFlag = inputs.scope === 'user' ? '--user' : '--system';
  const lines = [
    `# Written by 'adi daemon install ${scopeFlag}'${inputs.version ? ` (adi ${inputs.version})` : ''}; 'adi daemon uninstall ${scopeFlag}' removes it.`,
    '[Unit]',
    'Description=adi daemon: supervisor of the adi services',
    'After=network.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${[inputs.node, inputs.cli, 'daemon', 'run'].map(systemdExecArg).join(' ')}`,
    // A crash or a kill brings it back; `adi daemon stop` (exit 0) keeps it stopped.
    'Restart=on-failure',
    'RestartSec=2',
    '# The daemon stops its services itself on SIGTERM; systemd kills only what is left after it exits.',
    'KillMode=mixed',
    `TimeoutStopSec=${STOP_TIMEOUT_SECS}`,
  ];
  for (const [key, value] of carriedEnvironment(inputs)) lines.push(`Environment=${systemdEnvAssignment(key, value)}`);
  if (inputs.scope === 'system' && inputs.runAs) lines.push(`User=${inputs.runAs}`);
  lines.push('', '[Install]', `WantedBy=${inputs.scope === 'user' ? 'default.target' : 'multi-user.target'}`, '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// launchd

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function launchdPlist(inputs: BootInputs): string {
  const logFile = path.posix.join(
    inputs.logsDir ?? path.posix.join(inputs.home, '.local', 'share', 'adi', 'logs'),
    'launchd.log',
  );
  const env = carriedEnvironment(inputs);
  const s = (v: string): string => `<string>${xml(v)}</string>`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    // No "--" inside an XML comment: the flags are spelled out in words.
    `<!-- Written by 'adi daemon install' for the ${inputs.scope} scope${inputs.version ? ` (adi ${xml(inputs.version).replace(/-+/g, '-')})` : ''}; 'adi daemon uninstall' removes it. -->`,
    '<plist version="1.0">',
    '<dict>',
    `  <key>Label</key>${s(LAUNCHD_LABEL)}`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    // --background: the daemon logs to its own file only; launchd's file keeps what bypasses it (a crash).
    ...[inputs.node, inputs.cli, 'daemon', 'run', '--background'].map((a) => `    ${s(a)}`),
    '  </array>',
    '  <key>RunAtLoad</key><true/>',
    // Restarted when it dies, not after `adi daemon stop` (a clean exit): systemd's Restart=on-failure.
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key><false/>',
    '  </dict>',
    '  <key>ThrottleInterval</key><integer>2</integer>',
    `  <key>ExitTimeOut</key><integer>${STOP_TIMEOUT_SECS}</integer>`,
    `  <key>StandardOutPath</key>${s(logFile)}`,
    `  <key>StandardErrorPath</key>${s(logFile)}`,
  ];
  if (env.length > 0) {
    lines.push('  <key>EnvironmentVariables</key>', '  <dict>');
    for (const [k, v] of env) lines.push(`    <key>${xml(k)}</key>${s(v)}`);
    lines.push('  </dict>');
  }
  if (inputs.scope === 'system' && inputs.runAs) lines.push(`  <key>UserName</key>${s(inputs.runAs)}`);
  lines.push('</dict>', '</plist>', '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Plans

export function bootKind(platform: NodeJS.Platform): BootKind {
  if (platform === 'linux') return 'systemd';
  if (platform === 'darwin') return 'launchd';
  throw new AdiError(
    'NOT_IMPLEMENTED',
    `Starting the daemon at boot is not implemented on ${platform}. Run 'adi daemon start' from a logon task instead (Task Scheduler on Windows).`,
  );
}

function under(root: string | undefined, file: string): string {
  return root ? path.join(root, file) : file;
}

export function bootPlan(inputs: BootInputs): BootPlan {
  const kind = bootKind(inputs.platform);
  const root = inputs.root;
  if (kind === 'systemd') {
    const user = inputs.scope === 'user';
    const configHome = inputs.env['XDG_CONFIG_HOME'] || path.join(inputs.home, '.config');
    const dir = user ? path.join(configHome, 'systemd', 'user') : under(root, '/etc/systemd/system');
    const target = user ? 'default.target' : 'multi-user.target';
    const ctl = user ? ['systemctl', '--user'] : ['systemctl'];
    return {
      kind,
      scope: inputs.scope,
      file: path.join(dir, UNIT_NAME),
      text: systemdUnit(inputs),
      enableLinks: [path.join(dir, `${target}.wants`, UNIT_NAME)],
      enable: [[...ctl, 'enable', '--now', UNIT_NAME]],
      disable: [[...ctl, 'disable', '--now', UNIT_NAME]],
      enableShown: `${ctl.join(' ')} enable --now adi-daemon`,
      disableShown: `${ctl.join(' ')} disable --now adi-daemon`,
    };
  }
  const user = inputs.scope === 'user';
  const file = user
    ? path.join(inputs.home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`)
    : under(root, `/Library/LaunchDaemons/${LAUNCHD_LABEL}.plist`);
  const domain = user ? `gui/${inputs.uid ?? 0}` : 'system';
  return {
    kind,
    scope: inputs.scope,
    file,
    text: launchdPlist(inputs),
    enableLinks: [],
    enable: [['launchctl', 'bootstrap', domain, file]],
    disable: [['launchctl', 'bootout', `${domain}/${LAUNCHD_LABEL}`]],
    enableShown: `launchctl bootstrap ${domain} ${file}`,
    disableShown: `launchctl bootout ${domain}/${LAUNCHD_LABEL}`,
  };
}

/** Write the file (0644: the service manager reads it; it holds no secret). Returns whether it changed. */
export function writeBootFile(plan: BootPlan): boolean {
  let before: string | null = null;
  try {
    before = fs.readFileSync(plan.file, 'utf8');
  } catch {
    // not installed yet
  }
  if (before === plan.text) return false;
  fs.mkdirSync(path.dirname(plan.file), { recursive: true });
  const tmp = `${plan.file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, plan.text, { mode: 0o644 });
  fs.renameSync(tmp, plan.file);
  return true;
}

/** Remove the file and the enable links that point at it. Returns what was removed. */
export function removeBootFiles(plan: BootPlan): string[] {
  const removed: string[] = [];
  for (const link of plan.enableLinks) {
    try {
      // Only a link is ours to remove: something else at that path was put there by someone else.
      if (fs.lstatSync(link).isSymbolicLink()) {
        fs.rmSync(link);
        removed.push(link);
      }
    } catch {
      // not enabled
    }
  }
  try {
    fs.rmSync(plan.file);
    removed.push(plan.file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return removed;
}

/** Whether systemd runs as the init system here (sd_booted(): /run/systemd/system exists). */
export function systemdBooted(root = '/'): boolean {
  try {
    return fs.statSync(path.join(root, 'run', 'systemd', 'system')).isDirectory();
  } catch {
    return false;
  }
}
