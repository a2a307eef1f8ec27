// `adi completion bash|zsh|fish`: print a completion script. The scripts call the hidden
// `adi __complete` (src/cli/complete.ts) for every answer.

import { AdiError } from '../../core/errors.js';
import { defineCommand } from '../command.js';
import { serviceNames } from '../complete.js';
import { bashScript, fishScript, zshScript } from '../completion.js';

const SCRIPTS = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;

export const command = defineCommand({
  name: 'completion',
  usage: 'adi completion bash|zsh|fish',
  args: [{ name: 'SHELL', choices: Object.keys(SCRIPTS), optional: true }],
  options: {
    // What the scripts of earlier versions call; a saved one keeps completing service names.
    'list-services': {
      type: 'boolean',
      hidden: true,
      help: "The daemon's service names, one a line; nothing when none runs",
    },
  },
  description: `Prints a script that completes adi's commands, options and, when the daemon runs, service names.
  bash:  source <(adi completion bash)        in ~/.bashrc
  zsh:   source <(adi completion zsh)         in ~/.zshrc, after compinit
  fish:  adi completion fish | source         in ~/.config/fish/config.fish
The script calls adi for each completion, so it follows the adi found on PATH.`,
  async run({ values, positionals }, io) {
    if (values['list-services'] === true) {
      const names = await serviceNames(io);
      if (names.length > 0) io.stdout.write(`${names.join('\n')}\n`);
      return 0;
    }
    const shell = positionals[0];
    if (shell === undefined)
      throw new AdiError('BAD_ARGUMENT', "Name one shell: bash, zsh or fish. See 'adi completion --help'.");
    io.stdout.write(SCRIPTS[shell as keyof typeof SCRIPTS]);
    return 0;
  },
});
