// `adi daemon stop NAME [--force]`.

import { AdiError } from '../../core/errors.js';
import { checkName } from '../../core/paths.js';
import { parseCommandArgs, type CliIO } from '../command.js';
import { connectedClient } from '../daemon-client.js';
import { withProgress } from '../progress.js';

export async function stopService(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('daemon stop', argv, { force: { type: 'boolean' } });
  if (positionals.length !== 1) throw new AdiError('BAD_ARGUMENT', `Expected one service name, got ${positionals.length}. See 'adi daemon stop --help'.`);
  const name = checkName('service', positionals[0]);
  const client = await connectedClient(io);
  try {
    await withProgress(io, `stopping ${name}`, () => client.stopService(name, values.force === true));
    io.stdout.write(`stopped ${name}\n`);
    return 0;
  } finally {
    client.close();
  }
}
