import { defineCommand } from '../command.js';
import { connectedClient } from '../daemon-client.js';

export const command = defineCommand({
  name: 'daemon reload',
  args: [],
  options: {},
  description: `Re-reads ~/.config/adi/services.toml (or $XDG_CONFIG_HOME/adi/services.toml). Services whose
definition did not change are not touched; changed ones are restarted; removed ones are stopped.
A service whose new definition is invalid (or a file that cannot be parsed at all) changes nothing:
the service keeps its last valid definition, and keeps running. Each error is printed (file,
service, field, hint) and the exit status is 1. SIGHUP to the daemon reloads too (errors go to the
daemon log and to 'adi daemon status').`,
  async run(_args, io) {
    const client = await connectedClient(io);
    try {
      const report = await client.reload();
      const parts: string[] = [];
      for (const [what, names] of [
        ['added', report.added],
        ['changed', report.changed],
        ['removed', report.removed],
      ] as const) {
        if (names.length > 0) parts.push(`${what} ${names.join(', ')}`);
      }
      parts.push(`${report.unchanged} unchanged`);
      io.stdout.write(`services file reloaded${report.errors.length > 0 ? ' with errors' : ''}: ${parts.join('; ')}\n`);
      if (report.kept.length > 0) {
        io.stderr.write(
          `kept the last valid definition of ${report.kept.join(', ')} (running as before): the new one is invalid\n`,
        );
      }
      if (report.conflicts !== undefined && report.conflicts.length > 0) {
        io.stderr.write(
          `name conflicts (definitions not loaded; see 'adi daemon services'):\n${report.conflicts.map((c) => `  ${c}`).join('\n')}\n`,
        );
      }
      if (report.errors.length === 0) return 0;
      io.stderr.write(
        `${report.errors.length} error${report.errors.length === 1 ? '' : 's'} in the service definitions:\n${report.errors.map((e) => `  ${e}`).join('\n')}\n`,
      );
      return 1;
    } finally {
      client.close();
    }
  },
});
