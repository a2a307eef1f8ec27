// The `adi` command's entry: find the command module for the words typed, load only that module, run
// it, and turn an AdiError into one clear line and an exit code. Summaries live here so that `--help`
// loads nothing else.

import { AdiError } from '../errors.js';
import type { CliIO, Command } from './command.js';
import { exitCodeFor, hintFor } from './output.js';

export interface Entry {
  summary: string;
  load: () => Promise<{ command: Command }>;
}

const COMMANDS: Record<string, Entry> = {
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

const GROUPS: Record<string, string> = {
  daemon: 'Control the background daemon and its services',
  plugin: 'Install, list and remove plugins',
};

/** Commands of one word, outside any group. */
const TOP: Record<string, Entry> = {
  completion: { summary: 'Print a shell completion script: completion bash|zsh|fish', load: () => import('./commands/completion.js') },
};

/** The command table, for shell completion. */
export function commandTable(): { groups: Record<string, string>; commands: Record<string, Entry>; top: Record<string, Entry> } {
  return { groups: GROUPS, commands: COMMANDS, top: TOP };
}

function topHelp(version: string): string {
  const lines = [`adi ${version}`, '', 'Usage: adi <command> [options]', '', 'Commands:'];
  for (const [group, summary] of Object.entries(GROUPS)) lines.push(`  ${group.padEnd(16)} ${summary}`);
  for (const [name, entry] of Object.entries(TOP)) lines.push(`  ${name.padEnd(16)} ${entry.summary}`);
  lines.push('', "Run 'adi daemon --help' for the daemon's commands.", 'Options:', '  --help, -h       Show help', '  --version, -v    Show the version');
  return lines.join('\n') + '\n';
}

function groupHelp(group: string): string {
  const lines = [`Usage: adi ${group} <command> [options]`, '', 'Commands:'];
  for (const [name, entry] of Object.entries(COMMANDS)) {
    if (name.startsWith(`${group} `)) lines.push(`  ${name.slice(group.length + 1).padEnd(10)} ${entry.summary}`);
  }
  lines.push('', `Run 'adi ${group} <command> --help' for a command's options.`);
  return lines.join('\n') + '\n';
}

export async function main(argv: string[], io: CliIO, version: () => string): Promise<number> {
  const [first, second, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout.write(topHelp(version()));
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-v' || first === 'version') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  const single = Object.hasOwn(TOP, first) ? TOP[first] : undefined;
  if (single !== undefined) return runEntry(single, argv.slice(1), io);
  if (!(first in GROUPS)) {
    io.stderr.write(`adi: unknown command '${first}'. Run 'adi --help' for the list.\n`);
    return 2;
  }
  if (second === undefined || second === '--help' || second === '-h' || second === 'help') {
    io.stdout.write(groupHelp(first));
    return second === undefined ? 2 : 0;
  }
  const entry = COMMANDS[`${first} ${second}`];
  if (!entry) {
    io.stderr.write(`adi: unknown command '${first} ${second}'. Run 'adi ${first} --help' for the list.\n`);
    return 2;
  }
  return runEntry(entry, rest, io);
}

async function runEntry(entry: Entry, rest: string[], io: CliIO): Promise<number> {
  const { command } = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    const dashdash = rest.indexOf('--');
    const helpAt = Math.max(rest.indexOf('--help'), rest.indexOf('-h'));
    if (dashdash < 0 || helpAt < dashdash) {
      io.stdout.write(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
      return 0;
    }
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof AdiError) {
      io.stderr.write(`adi: ${err.message}\n`);
      const hint = hintFor(err, io.env);
      if (hint) io.stderr.write(`${hint}\n`);
      return exitCodeFor(err);
    }
    throw err;
  }
}
