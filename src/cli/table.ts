// The command table: each command's words, its one-line summary and how to load its module. main.ts
// dispatches on it, completion lists it, and scripts/bundle.mjs makes one bundle per entry from it.
// Summaries live here so that `--help` loads no command module.

import type { Command } from './command.js';

export interface Entry {
  summary: string;
  load: () => Promise<{ command: Command }>;
}

export const COMMANDS: Record<string, Entry> = {
  'daemon run': { summary: 'Run the daemon in the foreground (logs to the terminal too)', load: () => import('./commands/daemon-run.js') },
  'daemon start': { summary: 'Start the daemon in the background, or start a service: start NAME [-- COMMAND ARGS...]', load: () => import('./commands/daemon-start.js') },
  'daemon stop': { summary: 'Stop the daemon and all its services, or one service: stop NAME [--force]', load: () => import('./commands/daemon-stop.js') },
  'daemon status': { summary: 'Show whether the daemon runs: pid, version, uptime, socket (exit 3 when not)', load: () => import('./commands/daemon-status.js') },
  'daemon services': { summary: 'List services: state, pid, CPU, memory, uptime, restarts, last error [--watch]', load: () => import('./commands/daemon-services.js') },
  'daemon restart': { summary: 'Restart a service', load: () => import('./commands/daemon-restart.js') },
  'daemon logs': { summary: "Show a service's log: logs NAME... | --all [-n N] [-f] [--since 10m] [--stderr]", load: () => import('./commands/daemon-logs.js') },
  'daemon reload': { summary: 'Re-read the services file', load: () => import('./commands/daemon-reload.js') },
  'daemon setup': { summary: 'Create the adi / adi-root users and sudoers rule (run as root)', load: () => import('./commands/daemon-setup.js') },
  'daemon top': { summary: 'Live view of the services: CPU, memory, state (services --watch)', load: () => import('./commands/daemon-top.js') },
  'daemon install': { summary: 'Start the daemon at login or boot: install [--user | --system] [--now]', load: () => import('./commands/daemon-install.js') },
  'daemon uninstall': { summary: 'Remove what install wrote: uninstall [--user | --system] [--now]', load: () => import('./commands/daemon-uninstall.js') },
  'plugin install': { summary: 'Install a plugin: install <folder | file.tgz | npm package> [--yes]', load: () => import('./commands/plugin-install.js') },
  'plugin uninstall': { summary: 'Remove a plugin: stop its service, delete its files and approval', load: () => import('./commands/plugin-uninstall.js') },
  'plugin list': { summary: 'List installed plugins: version, service, approved root access [--json]', load: () => import('./commands/plugin-list.js') },
};

export const GROUPS: Record<string, string> = {
  daemon: 'Control the background daemon and its services',
  plugin: 'Install, list and remove plugins',
};

/** Commands of one word, outside any group. */
export const TOP: Record<string, Entry> = {
  completion: { summary: 'Print a shell completion script: completion bash|zsh|fish', load: () => import('./commands/completion.js') },
};

/** The command table, for shell completion. */
export function commandTable(): { groups: Record<string, string>; commands: Record<string, Entry>; top: Record<string, Entry> } {
  return { groups: GROUPS, commands: COMMANDS, top: TOP };
}
