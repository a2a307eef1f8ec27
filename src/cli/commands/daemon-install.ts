// `adi daemon install [--user | --system] [--now]`: start the daemon at login / boot through the
// platform's service manager (systemd, launchd). The files are made in src/cli/boot.ts.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { AdiError } from '../../core/errors.js';
import { resolvePaths } from '../../core/paths.js';
import { bootPlan, systemdBooted, writeBootFile, type BootPlan, type BootScope } from '../boot.js';
import { cliEntry, packageVersion } from '../../core/version.js';
import { defineCommand, type CliIO } from '../command.js';
import { cliClient } from '../daemon-client.js';
import { withProgress } from '../progress.js';

export const BOOT_OPTIONS = {
  user: {
    type: 'boolean',
    help: 'For you, at login (default): $XDG_CONFIG_HOME/systemd/user/adi-daemon.service, or ~/Library/LaunchAgents/adi-daemon.plist. No root needed.',
  },
  system: {
    type: 'boolean',
    help: `At boot, before anyone logs in: /etc/systemd/system/adi-daemon.service, or /Library/LaunchDaemons/adi-daemon.plist
      (run with sudo). The daemon runs as the user who ran sudo (User=), or as root when root runs it directly.`,
  },
  now: { type: 'boolean', help: 'Enable and start it now (systemctl enable --now / launchctl bootstrap)' },
  root: {
    type: 'string',
    value: 'DIR',
    complete: 'dir',
    help: 'With --system: write under DIR instead of / (packaging, tests)',
  },
} as const;

export interface BootValues {
  user?: boolean;
  system?: boolean;
  now?: boolean;
  root?: string;
}

/** The plan for this machine and these options (shared with uninstall). */
export function planFor(commandName: string, values: BootValues, io: CliIO): BootPlan {
  if (values.user === true && values.system === true) {
    throw new AdiError('BAD_ARGUMENT', `Give --user or --system, not both. See 'adi ${commandName} --help'.`);
  }
  const scope: BootScope = values.system === true ? 'system' : 'user';
  if (values.root !== undefined && scope !== 'system')
    throw new AdiError('BAD_ARGUMENT', `--root goes with --system. See 'adi ${commandName} --help'.`);
  if (values.root !== undefined && values.now === true) {
    throw new AdiError(
      'BAD_ARGUMENT',
      `--now acts on this machine's service manager, so it cannot go with --root. See 'adi ${commandName} --help'.`,
    );
  }
  const uid = process.getuid?.() ?? -1;
  const account = os.userInfo();
  const sudoUser = io.env['SUDO_USER'];
  // System scope: the daemon runs as the admin who set it up: the sudo caller, or
  // the current user, or root when root installs it directly.
  const runAs =
    scope !== 'system' ? null : uid === 0 ? (sudoUser && sudoUser !== 'root' ? sudoUser : null) : account.username;
  const home = io.env['HOME'] || account.homedir;
  return bootPlan({
    platform: process.platform,
    scope,
    env: io.env,
    home,
    accountHome: account.homedir,
    node: process.execPath,
    cli: cliEntry(),
    runAs,
    uid,
    root: values.root,
    version: packageVersion(),
    logsDir: resolvePaths({ env: io.env, home }).logsDir,
  });
}

/** Run one service-manager command; its output is shown only when it fails. */
export function runManagerCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(argv[0] as string, argv.slice(1), { env, timeout: 120_000 }, (err, stdout, stderr) => {
      const output = `${stderr}${stdout}`.trim();
      if (err === null) resolve({ ok: true, output });
      else if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        resolve({ ok: false, output: `${argv[0]} is not installed (not found on PATH)` });
      else resolve({ ok: false, output: output || err.message });
    });
  });
}

/** Whether the process runs inside our systemd unit (its cgroup path names it). */
function inUnit(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes('/adi-daemon.service');
  } catch {
    return false;
  }
}

const scopeFlag = (plan: BootPlan): string => `--${plan.scope}`;

export const command = defineCommand({
  name: 'daemon install',
  args: [],
  options: BOOT_OPTIONS,
  description: `Makes the platform's service manager run 'adi daemon run' and restart it if it dies (not after
'adi daemon stop'). Linux: a systemd unit; macOS: a launchd property list. Then prints the one
command that enables it, or runs it with --now.`,
  notes: `The unit carries the data-directory variables that are set (XDG_DATA_HOME, XDG_CONFIG_HOME,
ADI_DAEMON_SOCKET, ADI_DAEMON_PID, ADI_DAEMON_LOG, ADI_USER, ADI_ROOT_USER) and PATH, so the daemon
finds what it finds from this shell. Install again after changing them.
'adi daemon uninstall' removes it.`,
  async run({ values }, io) {
    const plan = planFor('daemon install', values, io);
    let changed: boolean;
    try {
      changed = writeBootFile(plan);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') {
        throw new AdiError(
          'PERMISSION_DENIED',
          `Cannot write ${plan.file}: permission denied. ${plan.scope === 'system' ? "Run 'sudo adi daemon install --system'" : 'Check the ownership of that directory'}, or use --user.`,
        );
      }
      throw err;
    }
    io.stdout.write(`${changed ? 'Wrote' : 'Unchanged:'} ${plan.file}\n`);
    if (plan.kind === 'systemd' && !systemdBooted()) {
      io.stderr.write(
        'adi: note: systemd is not running on this machine (no /run/systemd/system), so the unit will not start here.\n',
      );
    }

    // A daemon that the service manager did not start would make the unit's daemon step aside.
    const client = cliClient(io);
    const pong = await client.ping().catch(() => null);
    client.close();
    const outside = pong !== null && !(plan.kind === 'systemd' && inUnit(pong.pid));
    if (outside && pong !== null) {
      io.stderr.write(
        `adi: note: a daemon started outside ${plan.kind} runs (pid ${pong.pid}); the one ${plan.kind} starts will step aside while it does. 'adi daemon stop' stops it first.\n`,
      );
    }

    if (values.now !== true) {
      const when = plan.scope === 'user' ? 'now and at every login' : 'now and at every boot';
      io.stdout.write(
        `To start it ${when}, run:\n  ${plan.scope === 'system' && process.getuid?.() !== 0 ? 'sudo ' : ''}${plan.enableShown}\n`,
      );
      if (plan.kind === 'systemd' && plan.scope === 'user') {
        io.stdout.write(`To start it at boot without logging in: loginctl enable-linger ${os.userInfo().username}\n`);
      }
      return 0;
    }

    for (const step of plan.enable) {
      const result = await withProgress(io, `running ${step.join(' ')}`, () => runManagerCommand(step, io.env));
      if (!result.ok) {
        throw new AdiError(
          'DAEMON_START_FAILED',
          `'${step.join(' ')}' failed: ${result.output}\nThe file is installed; fix the cause and run '${plan.enableShown}', or start the daemon without it: 'adi daemon start'.`,
        );
      }
    }
    if (outside) {
      io.stdout.write(
        `Enabled (${plan.enableShown}); the daemon already running (pid ${pong?.pid}) stays in charge until it stops.\n`,
      );
      return 0;
    }
    const waiter = cliClient(io);
    try {
      const up = await withProgress(io, 'waiting for the daemon to answer', () => waiter.waitUntilRunning(10_000));
      io.stdout.write(`Enabled and started: adi daemon runs (pid ${up.pid}) under ${plan.kind}.\n`);
    } catch {
      const status =
        plan.kind === 'systemd'
          ? `${plan.enableShown.replace(/ enable --now adi-daemon$/, '')} status adi-daemon`
          : `launchctl print ${plan.disableShown.split(' ').pop() ?? ''}`;
      io.stderr.write(
        `adi: enabled, but the daemon does not answer yet; '${status}' shows why (install again with ${scopeFlag(plan)} after fixing).\n`,
      );
      return 1;
    } finally {
      waiter.close();
    }
    return 0;
  },
});
