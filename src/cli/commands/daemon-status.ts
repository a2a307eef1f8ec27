import { AdiError } from '../../core/errors.js';
import type { PluginSocketStatus } from '../../protocol/types.js';
import { packageVersion } from '../../core/version.js';
import { defineCommand } from '../command.js';
import { cliClient } from '../daemon-client.js';
import { formatDuration } from '../output.js';
import { writeReports } from '../reports.js';

/** One line on the plugin socket for a person, or null when there is nothing to say (no separation). */
export function pluginSocketLine(status: PluginSocketStatus | undefined): string | null {
  if (status === undefined) return null;
  switch (status.state) {
    case 'listening':
      return `${status.address ?? '?'}${status.error !== null ? ` (warning: ${status.error})` : ''}`;
    case 'pending':
      return 'not yet bound (the daemon is starting)';
    case 'failed':
      return `NOT LISTENING: plugin services cannot reach the daemon: ${status.error ?? 'unknown error'}`;
  }
}

export const command = defineCommand({
  name: 'daemon status',
  args: [],
  options: { json: { type: 'boolean', help: 'Print one JSON object (fields above) instead of lines' } },
  description: `Prints the daemon's pid, version, uptime and socket; with privilege separation, the plugin socket
(and why it does not listen, when it cannot be bound); and any service name defined by more than
one source. Errors in services.toml (as last loaded) and what is degraded (a state file that cannot
be written, a full disk) are listed too, on stderr. Exit status 0 when it runs, 3 when it does not.
--json prints an object: running, pid, version, uptime_secs, socket, separation, plugin_socket
({ state: pending|listening|failed, address, error }; null without separation or when not running),
conflicts (one line per conflicting name), config_errors and problems.`,
  async run({ values }, io) {
    const client = cliClient(io);
    const socket = client.paths.socket.display;
    try {
      const pong = await client.ping();
      client.close();
      if (values.json) {
        io.stdout.write(
          `${JSON.stringify({
            running: true,
            pid: pong.pid,
            version: pong.version,
            uptime_secs: pong.uptime_secs,
            socket,
            separation: pong.separation,
            plugin_socket: pong.plugin_socket ?? null,
            conflicts: pong.conflicts ?? [],
            config_errors: pong.config_errors ?? [],
            problems: pong.problems ?? [],
          })}\n`,
        );
      } else {
        const lines = [
          `adi daemon is running`,
          `  pid:        ${pong.pid}`,
          `  version:    ${pong.version}${pong.version !== packageVersion() ? ` (this adi is ${packageVersion()}; 'adi daemon start' replaces it)` : ''}`,
          `  uptime:     ${formatDuration(pong.uptime_secs)}`,
          `  socket:     ${socket}`,
          `  separation: ${pong.separation ? 'active (services and Run as the plugin user)' : "not set up (everything runs as you; 'sudo adi daemon setup' enables it)"}`,
        ];
        const plugin = pluginSocketLine(pong.plugin_socket);
        if (plugin !== null) lines.push(`  plugin socket: ${plugin}`);
        const conflicts = pong.conflicts ?? [];
        if (conflicts.length > 0) {
          lines.push(
            `  name conflicts (definitions not loaded; see 'adi daemon services'):`,
            ...conflicts.map((c) => `    ${c}`),
          );
        }
        io.stdout.write(`${lines.join('\n')}\n`);
        writeReports(io.stderr, pong);
      }
      return 0;
    } catch (err) {
      if (err instanceof AdiError && err.code === 'DAEMON_NOT_RUNNING') {
        if (values.json)
          io.stdout.write(
            `${JSON.stringify({ running: false, pid: null, version: null, uptime_secs: null, socket, separation: null, plugin_socket: null, conflicts: null })}\n`,
          );
        else io.stdout.write(`adi daemon is not running (socket ${socket}). Start it with 'adi daemon start'.\n`);
        return 3;
      }
      throw err;
    }
  },
});
