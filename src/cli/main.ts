// The `adi` command's entry: find the command module for the words typed, load only that module, run
// it, and turn an AdiError into one clear line and an exit code. Summaries live here so that `--help`
// loads nothing else.

import { AdiError } from '../errors.js';
import type { CliIO, Command } from './command.js';
import { exitCodeFor, hintFor } from './output.js';

interface Entry {
  summary: string;
  load: () => Promise<{ command: Command }>;
}

const COMMANDS: Record<string, Entry> = {
  'daemon run': { summary: 'Run the daemon in the foreground (logs to the terminal too)', load: () => import('./commands/daemon-run.js') },
  'daemon start': { summary: 'Start the daemon in the background, or start a service: start NAME [-- COMMAND ARGS...]', load: () => import('./commands/daemon-start.js') },
  'daemon stop': { summary: 'Stop the daemon and all its services, or one service: stop NAME [--force]', load: () => import('./commands/daemon-stop.js') },
  'daemon status': { summary: 'Show whether the daemon runs: pid, version, uptime, socket (exit 3 when not)', load: () => import('./commands/daemon-status.js') },
  'daemon services': { summary: 'List services: state, pid, uptime, restarts, last error', load: () => import('./commands/daemon-services.js') },
  'daemon restart': { summary: 'Restart a service', load: () => import('./commands/daemon-restart.js') },
  'daemon logs': { summary: "Show a service's log: logs NAME [-n N] [-f]", load: () => import('./commands/daemon-logs.js') },
  'daemon reload': { summary: 'Re-read the services file', load: () => import('./commands/daemon-reload.js') },
  'daemon setup': { summary: 'Create the adi / adi-root users and sudoers rule (run as root)', load: () => import('./commands/daemon-setup.js') },
};

const GROUPS: Record<string, string> = {
  daemon: 'Control the background daemon and its services',
};

function topHelp(version: string): string {
  const lines = [`adi ${version}`, '', 'Usage: adi <command> [options]', '', 'Commands:'];
  for (const [group, summary] of Object.entries(GROUPS)) lines.push(`  ${group.padEnd(16)} ${summary}`);
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
      const hint = hintFor(err);
      if (hint) io.stderr.write(`${hint}\n`);
      return exitCodeFor(err);
    }
    throw err;
  }
}
