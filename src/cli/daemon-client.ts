// How CLI commands reach the daemon: a DaemonClient from the CLI's environment; for commands that need
// the daemon, start it when it is not running and say in
// one line, once, when it is of another version.

import { DaemonClient } from '../client/client.js';
import { packageVersion } from '../core/version.js';
import type { CliIO } from './command.js';

export function cliClient(io: CliIO): DaemonClient {
  return new DaemonClient({ env: io.env, clientName: `adi-cli/${packageVersion()}` });
}

export async function connectedClient(io: CliIO): Promise<DaemonClient> {
  const client = cliClient(io);
  const version = await client.ensureConnected();
  const ours = packageVersion();
  if (version !== ours) {
    io.stderr.write(
      `adi: the running daemon is version ${version}, this adi is ${ours}; 'adi daemon start' replaces it.\n`,
    );
  }
  return client;
}
