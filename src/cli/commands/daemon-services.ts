import type { ServiceInfo } from '../../protocol/types.js';
import { parseCommandArgs, type Command } from '../command.js';
import { connectedClient } from '../daemon-client.js';
import { formatDuration } from '../output.js';

export function servicesTable(list: ServiceInfo[]): string {
  const header = ['NAME', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'LAST ERROR'];
  const rows = list.map((s) => [
    s.name,
    s.state,
    s.pid === null ? '-' : String(s.pid),
    s.uptime_secs === null ? '-' : formatDuration(s.uptime_secs),
    String(s.restarts),
    s.last_error ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export const command: Command = {
  name: 'daemon services',
  summary: 'List services',
  usage: `Usage: adi daemon services [--json]

Lists every service the daemon knows: name, state, pid, uptime, automatic restarts and last error.
--json prints the array of ServiceInfo objects (see docs/protocol.md).`,
  async run(argv, io) {
    const { values } = parseCommandArgs('daemon services', argv, { json: { type: 'boolean' } }, false);
    const client = await connectedClient(io);
    try {
      const list = await client.listServices();
      if (values.json) io.stdout.write(`${JSON.stringify(list)}\n`);
      else if (list.length === 0) io.stdout.write("no services (define them in services.toml, or 'adi daemon start NAME -- COMMAND')\n");
      else io.stdout.write(servicesTable(list));
      return 0;
    } finally {
      client.close();
    }
  },
};
