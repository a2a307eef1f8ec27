// The `adi` command's entry: find the command module for the words typed (table.ts), load only that
// module, print its help or run it, and turn an AdiError into one clear line and an exit code.

import { AdiError } from '../core/errors.js';
import { helpText, type CliIO } from './command.js';
import { exitCodeFor, hintFor } from './output.js';
import { COMMANDS, GROUPS, TOP, type Entry } from './table.js';

function topHelp(version: string): string {
  const lines = [`adi ${version}`, '', 'Usage: adi <command> [options]', '', 'Commands:'];
  for (const [group, summary] of Object.entries(GROUPS)) lines.push(`  ${group.padEnd(16)} ${summary}`);
  for (const [name, entry] of Object.entries(TOP)) lines.push(`  ${name.padEnd(16)} ${entry.summary}`);
  lines.push(
    '',
    "Run 'adi daemon --help' for the daemon's commands.",
    'Options:',
    '  --help, -h       Show help',
    '  --version, -v    Show the version',
  );
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
  if (first === '__complete') {
    // Hidden: the shell completion scripts call it on each TAB.
    const { runComplete } = await import('./complete.js');
    return runComplete(argv.slice(1), io);
  }
  const single = Object.hasOwn(TOP, first) ? TOP[first] : undefined;
  if (single !== undefined) return runEntry(first, single, argv.slice(1), io);
  if (!(first in GROUPS)) {
    io.stderr.write(`adi: unknown command '${first}'. Run 'adi --help' for the list.\n`);
    return 2;
  }
  if (second === undefined || second === '--help' || second === '-h' || second === 'help') {
    io.stdout.write(groupHelp(first));
    return second === undefined ? 2 : 0;
  }
  const name = `${first} ${second}`;
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    io.stderr.write(`adi: unknown command '${first} ${second}'. Run 'adi ${first} --help' for the list.\n`);
    return 2;
  }
  return runEntry(name, entry, rest, io);
}

async function runEntry(name: string, entry: Entry, rest: string[], io: CliIO): Promise<number> {
  const { command } = await entry.load();
  // After `--` it belongs to the command line being passed on (adi daemon start NAME -- CMD --help).
  const dashdash = rest.indexOf('--');
  if ((dashdash < 0 ? rest : rest.slice(0, dashdash)).some((w) => w === '--help' || w === '-h')) {
    io.stdout.write(helpText(name, command.spec));
    return 0;
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
