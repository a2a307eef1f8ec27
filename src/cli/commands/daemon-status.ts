import { AdiError } from '../../errors.js';
import { packageVersion } from '../../version.js';
import { parseCommandArgs, type Command } from '../command.js';
import { cliClient } from '../daemon-client.js';
import { formatDuration } from '../output.js';
import { writeReports } from '../reports.js';

export const command: Command = {
  name: 'daemon status',
  summary: 'Show whether the daemon runs',
  usage: `Usage: adi daemon status [--json]

Prints the daemon's pid, version, uptime and socket. Exit status 0 when it runs, 3 when it does not.
--json prints an object: running, pid, version, uptime_secs, socket, separation, config_errors,
problems. Errors in services.toml (as last loaded) and what is degraded (a state file that cannot be
written, a full disk) are listed too, on stderr.`,
  async run(argv, io) {
    const { values } = parseCommandArgs('daemon status', argv, { json: { type: 'boolean' } }, false);
    const client = cliClient(io);
    const socket = client.paths.socket.display;
    try {
      const pong = await client.ping();
      client.close();
      if (values.json) {
        io.stdout.write(`${JSON.stringify({ running: true, pid: pong.pid, version: pong.version, uptime_secs: pong.uptime_secs, socket, separation: pong.separation, config_errors: pong.config_errors ?? [], problems: pong.problems ?? [] })}\n`);
      } else {
        const lines = [
          `adi daemon is running`,
          `  pid:        ${pong.pid}`,
          `  version:    ${pong.version}${pong.version !== packageVersion() ? ` (this adi is ${packageVersion()}; 'adi daemon start' replaces it)` : ''}`,
          `  uptime:     ${formatDuration(pong.uptime_secs)}`,
          `  socket:     ${socket}`,
          `  separation: ${pong.separation ? 'active (services and Run as the plugin user)' : "not set up (everything runs as you; 'sudo adi daemon setup' enables it)"}`,
        ];
        io.stdout.write(`${lines.join('\n')}\n`);
        writeReports(io.stderr, pong);
      }
      return 0;
    } catch (err) {
      if (err instanceof AdiError && err.code === 'DAEMON_NOT_RUNNING') {
        if (values.json) io.stdout.write(`${JSON.stringify({ running: false, pid: null, version: null, uptime_secs: null, socket, separation: null })}\n`);
        else io.stdout.write(`adi daemon is not running (socket ${socket}). Start it with 'adi daemon start'.\n`);
        return 3;
      }
      throw err;
    }
  },
};
