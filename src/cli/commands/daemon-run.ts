import { resolvePaths } from '../../core/paths.js';
import { createPluginSource } from '../../plugins/source.js';
import { runDaemon } from '../../server/daemon.js';
import { defineCommand } from '../command.js';

export const command = defineCommand({
  name: 'daemon run',
  args: [],
  options: {
    // How 'adi daemon start' runs it: logs to its file only.
    background: { type: 'boolean', help: 'Log to the log file only', hidden: true },
  },
  description: `Runs the daemon in the foreground: it logs to the terminal as well as to its log file, and stops
(with all its services) on Ctrl-C or SIGTERM. 'adi daemon start' runs the same daemon in the background.`,
  async run({ values }, io) {
    const paths = resolvePaths({ env: io.env });
    // Installed plugins are a source of service definitions besides services.toml.
    const code = await runDaemon({
      paths,
      foreground: values.background !== true,
      sources: [createPluginSource(paths)],
    });
    // Services are stopped and files removed; leftover handles must not keep a stopped daemon alive.
    process.exit(code);
  },
});
