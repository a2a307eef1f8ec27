// `adi daemon top`: the services table, refreshed in place (an alias of `adi daemon services --watch`).
import { defineCommand } from '../command.js';
import { connectedClient } from '../daemon-client.js';
import { watchOptions, watchServices, WATCH_OPTIONS } from './daemon-services.js';

export const command = defineCommand({
  name: 'daemon top',
  args: [],
  options: WATCH_OPTIONS,
  description: `The same as 'adi daemon services --watch': refreshes the services table (CPU %, memory, state) in place
until Ctrl-C.`,
  async run({ values }, io) {
    const client = await connectedClient(io);
    try {
      return await watchServices(client, io, watchOptions(values));
    } finally {
      client.close();
    }
  },
});
