// `adi completion bash|zsh|fish`: print a completion script. `adi completion --list-services` (hidden,
// used by the scripts) prints the daemon's service names, one a line, and nothing when no daemon
// answers: it never starts one, and gives up quickly, since a person is waiting on a TAB.

import { DaemonClient } from '../../client/client.js';
import { AdiError } from '../../core/errors.js';
import { packageVersion } from '../../core/version.js';
import { parseCommandArgs, type CliIO, type Command } from '../command.js';
import { bashScript, buildSpec, fishScript, zshScript, type TableInput } from '../completion.js';
import { commandTable } from '../table.js';

const SHELLS = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;

/** The command table with every command's usage (loads each command module once). */
async function tableWithUsage(): Promise<TableInput> {
  const { groups, commands, top } = commandTable();
  const load = async (entries: Record<string, { summary: string; load: () => Promise<{ command: Command }> }>) =>
    Object.fromEntries(await Promise.all(Object.entries(entries).map(async ([name, e]) => [name, { summary: e.summary, usage: (await e.load()).command.usage }] as const)));
  return { groups, commands: await load(commands), top: await load(top) };
}

async function listServices(io: CliIO): Promise<number> {
  const client = new DaemonClient({ env: io.env, clientName: `adi-completion/${packageVersion()}`, connectTimeoutMs: 300, timeoutMs: 1500 });
  try {
    const names = (await client.listServices()).map((s) => s.name);
    if (names.length > 0) io.stdout.write(`${names.join('\n')}\n`);
  } catch {
    // No daemon, another user's, or slow: complete nothing rather than print an error into a prompt.
  } finally {
    client.close();
  }
  return 0;
}

export const command: Command = {
  name: 'completion',
  summary: 'Print a shell completion script',
  usage: `Usage: adi completion bash|zsh|fish

Prints a script that completes adi's commands, options and, when the daemon runs, service names.
  bash:  source <(adi completion bash)        in ~/.bashrc
  zsh:   source <(adi completion zsh)         in ~/.zshrc, after compinit
  fish:  adi completion fish | source         in ~/.config/fish/config.fish
The script calls adi to list the services, so it follows the adi found on PATH.`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('completion', argv, { 'list-services': { type: 'boolean' } });
    if (values['list-services'] === true) return listServices(io);
    const shell = positionals[0];
    if (positionals.length !== 1 || shell === undefined || !Object.hasOwn(SHELLS, shell)) {
      throw new AdiError('BAD_ARGUMENT', `Name one shell: bash, zsh or fish. See 'adi completion --help'.`);
    }
    const script = SHELLS[shell as keyof typeof SHELLS](buildSpec(await tableWithUsage()));
    io.stdout.write(script);
    return 0;
  },
};
