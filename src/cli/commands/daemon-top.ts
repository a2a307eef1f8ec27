// `adi daemon top`: the services table, refreshed in place (an alias of `adi daemon services --watch`).
import type { Command } from '../command.js';
import { command as services } from './daemon-services.js';

export const command: Command = {
  name: 'daemon top',
  summary: 'Live view of the services with CPU and memory',
  usage: `Usage: adi daemon top [--interval SECS] [--count N] [--json]

The same as 'adi daemon services --watch': refreshes the services table (CPU %, memory, state) in place
until Ctrl-C.`,
  run(argv, io) {
    return services.run(['--watch', ...argv], io);
  },
};
