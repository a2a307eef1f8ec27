import { checkName } from '../../core/paths.js';
import { defineCommand } from '../command.js';
import { connectedClient } from '../daemon-client.js';

export const command = defineCommand({
  name: 'daemon restart',
  args: [{ name: 'NAME', service: true }],
  options: {},
  description: `Stops the service (SIGTERM, then SIGKILL after its stop timeout) and starts it again. Its automatic
restart count starts again from 0.`,
  async run({ positionals }, io) {
    const name = checkName('service', positionals[0]);
    const client = await connectedClient(io);
    try {
      const info = await client.restartService(name);
      io.stdout.write(`restarted ${name}${info.pid != null ? ` (pid ${info.pid})` : ''}\n`);
      return 0;
    } finally {
      client.close();
    }
  },
});
