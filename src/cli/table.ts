// The command table: each command's words, its one-line summary and how to load its module (which
// exports `command`: the spec of its arguments and options, and its run function). main.ts dispatches
// on it, `adi __complete` (complete.ts) lists it, and scripts/bundle.mjs makes one bundle per
// two-word command from it. A command "a b" lives in commands/a-b.js: the bundler relies on that, and
// test/cli/spec.test.ts checks it. Summaries live here so that `adi --help` loads no command module.

import type { Command } from './command.js';

export interface Entry {
  readonly summary: string;
  readonly load: () => Promise<{ command: Command }>;
}

export const COMMANDS: Readonly<Record<string, Entry>> = {
  'daemon run': {
    summary: 'Run the daemon in the foreground (logs to the terminal too)',
    load: () => import('./commands/daemon-run.js'),
  },
  'daemon start': {
    summary: 'Start the daemon in the background, or start a service: start NAME [-- COMMAND ARGS...]',
    load: () => import('./commands/daemon-start.js'),
  },
  'daemon stop': {
    summary: 'Stop the daemon and all its services, or one service: stop NAME [--force]',
    load: () => import('./commands/daemon-stop.js'),
  },
  'daemon status': {
    summary: 'Show whether the daemon runs: pid, version, uptime, socket (exit 3 when not)',
    load: () => import('./commands/daemon-status.js'),
  },
  'daemon services': {
    summary: 'List services: state, pid, CPU, memory, uptime, restarts, last error [--watch]',
    load: () => import('./commands/daemon-services.js'),
  },
  'daemon restart': { summary: 'Restart a service', load: () => import('./commands/daemon-restart.js') },
  'daemon logs': {
    summary: "Show a service's log: logs NAME... | --all [-n N] [-f] [--since 10m] [--stderr]",
    load: () => import('./commands/daemon-logs.js'),
  },
  'daemon reload': { summary: 'Re-read the services file', load: () => import('./commands/daemon-reload.js') },
  'daemon setup': {
    summary: 'Create the adi / adi-root users and sudoers rule (run as root)',
    load: () => import('./commands/daemon-setup.js'),
  },
  'daemon top': {
    summary: 'Live view of the services: CPU, memory, state (services --watch)',
    load: () => import('./commands/daemon-top.js'),
  },
  'daemon install': {
    summary: 'Start the daemon at login or boot: install [--user | --system] [--now]',
    load: () => import('./commands/daemon-install.js'),
  },
  'daemon uninstall': {
    summary: 'Remove what install wrote: uninstall [--user | --system] [--now]',
    load: () => import('./commands/daemon-uninstall.js'),
  },
  'plugin install': {
    summary: 'Install a plugin: install <folder | file.tgz | npm package> [--yes]',
    load: () => import('./commands/plugin-install.js'),
  },
  'plugin uninstall': {
    summary: 'Remove a plugin: stop its service, delete its files and approval',
    load: () => import('./commands/plugin-uninstall.js'),
  },
  'plugin list': {
    summary: 'List installed plugins: version, service, approved root access [--json]',
    load: () => import('./commands/plugin-list.js'),
  },
};

export const GROUPS: Readonly<Record<string, string>> = {
  daemon: 'Control the background daemon and its services',
  plugin: 'Install, list and remove plugins',
};

/** Commands of one word, outside any group. */
export const TOP: Readonly<Record<string, Entry>> = {
  completion: {
    summary: 'Print a shell completion script: completion bash|zsh|fish',
    load: () => import('./commands/completion.js'),
  },
};
