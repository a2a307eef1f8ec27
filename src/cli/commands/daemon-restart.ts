import { AdiError } from '../../core/errors.js';
import { checkName } from '../../core/paths.js';
import { parseCommandArgs, type Command } from '../command.js';
import { connectedClient } from '../daemon-client.js';

export const command: Command = {
  name: 'daemon restart',
  summary: 'Restart a service',
  usage: `Usage: adi daemon restart NAME

Stops the service (SIGTERM, then SIGKILL after its stop timeout) and starts it again. Its automatic
restart count starts again from 0.`,
  async run(argv, io) {
    const { positionals } = parseCommandArgs('daemon restart', argv, {});
    if (positionals.length !== 1) throw new AdiError('BAD_ARGUMENT', `Expected one service name, got ${positionals.length}. See 'adi daemon restart --help'.`);
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
};
