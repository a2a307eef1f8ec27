import { parseCommandArgs, type Command } from '../command.js';
import { connectedClient } from '../daemon-client.js';

export const command: Command = {
  name: 'daemon reload',
  summary: 'Re-read the services file',
  usage: `Usage: adi daemon reload

Re-reads ~/.config/adi/services.toml (or $XDG_CONFIG_HOME/adi/services.toml). Services whose
definition did not change are not touched; changed ones are restarted; removed ones are stopped.
Invalid entries are reported in the daemon log and skipped. SIGHUP to the daemon does the same.`,
  async run(argv, io) {
    parseCommandArgs('daemon reload', argv, {}, false);
    const client = await connectedClient(io);
    try {
      await client.reload();
      io.stdout.write('services file reloaded\n');
      return 0;
    } finally {
      client.close();
    }
  },
};
