import { resolvePaths } from '../../paths.js';
import { runDaemon } from '../../server/daemon.js';
import { parseCommandArgs, type Command } from '../command.js';

export const command: Command = {
  name: 'daemon run',
  summary: 'Run the daemon in the foreground',
  usage: `Usage: adi daemon run

Runs the daemon in the foreground: it logs to the terminal as well as to its log file, and stops
(with all its services) on Ctrl-C or SIGTERM. 'adi daemon start' runs the same daemon in the background.`,
  async run(argv, io) {
    const { values } = parseCommandArgs('daemon run', argv, { background: { type: 'boolean' } }, false);
    const code = await runDaemon({ paths: resolvePaths({ env: io.env }), foreground: values.background !== true });
    // Services are stopped and files removed; leftover handles must not keep a stopped daemon alive.
    process.exit(code);
  },
};
