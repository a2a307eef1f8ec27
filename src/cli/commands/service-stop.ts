// `adi daemon stop NAME [--force]`.

import { checkName } from '../../core/paths.js';
import type { CliIO } from '../command.js';
import { connectedClient } from '../daemon-client.js';
import { withProgress } from '../progress.js';

export async function stopService(typed: string, force: boolean, io: CliIO): Promise<number> {
  const name = checkName('service', typed);
  const client = await connectedClient(io);
  try {
    await withProgress(io, `stopping ${name}`, () => client.stopService(name, force));
    io.stdout.write(`stopped ${name}\n`);
    return 0;
  } finally {
    client.close();
  }
}
