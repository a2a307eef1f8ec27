// `adi completion bash|zsh|fish`: print a completion script. The scripts call the hidden
// `adi __complete` (src/cli/complete.ts) for every answer.

import { defineCommand } from '../command.js';
import { bashScript, fishScript, zshScript } from '../completion.js';

const SCRIPTS = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;

export const command = defineCommand({
  name: 'completion',
  usage: 'adi completion bash|zsh|fish',
  args: [{ name: 'SHELL', choices: Object.keys(SCRIPTS) }],
  options: {},
  description: `Prints a script that completes adi's commands, options and, when the daemon runs, service names.
  bash:  source <(adi completion bash)        in ~/.bashrc
  zsh:   source <(adi completion zsh)         in ~/.zshrc, after compinit
  fish:  adi completion fish | source         in ~/.config/fish/config.fish
The script calls adi for each completion, so it follows the adi found on PATH.`,
  run({ positionals }, io) {
    io.stdout.write(SCRIPTS[positionals[0] as keyof typeof SCRIPTS]);
    return Promise.resolve(0);
  },
});
