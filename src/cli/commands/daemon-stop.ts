import { AdiError } from '../../core/errors.js';
import { defineCommand } from '../command.js';
import { cliClient } from '../daemon-client.js';
import { withProgress } from '../progress.js';
import { DAEMON_STOP_WAIT_MS, waitForExit } from './daemon-start.js';

export const command = defineCommand({
  name: 'daemon stop',
  usage: `adi daemon stop              Stop the daemon gracefully: every service is stopped first; waits until it has exited
       adi daemon stop NAME         Stop one service (SIGTERM to its process group, SIGKILL after its stop timeout)
       adi daemon stop NAME --force Stop one service with SIGKILL at once`,
  args: [{ name: 'NAME', optional: true, service: true }],
  options: { force: { type: 'boolean', help: 'With NAME: SIGKILL at once, without waiting for its stop timeout' } },
  description: '',
  async run({ values, positionals }, io) {
    const name = positionals[0];
    if (name !== undefined) {
      const { stopService } = await import('./service-stop.js');
      return stopService(name, values.force === true, io);
    }
    if (values.force === true)
      throw new AdiError('BAD_ARGUMENT', "--force stops one service: 'adi daemon stop NAME --force'.");
    const client = cliClient(io);
    let pid: number;
    try {
      pid = (await client.ping()).pid;
    } catch (err) {
      if (err instanceof AdiError && err.code === 'DAEMON_NOT_RUNNING') {
        io.stdout.write('adi daemon is not running\n');
        return 0;
      }
      throw err;
    }
    // How many services the wait is for, to say so on the progress line (asked only for a terminal).
    const running =
      io.stderr.isTTY !== true
        ? 0
        : await client.listServices().then(
            (list) => list.filter((s) => s.pid !== null).length,
            () => 0,
          );
    await client.shutdown(true);
    client.close();
    const what =
      running > 0
        ? `stopping the daemon and its ${running} running service${running === 1 ? '' : 's'}`
        : 'stopping the daemon';
    await withProgress(io, what, () => waitForExit(pid, DAEMON_STOP_WAIT_MS));
    io.stdout.write(`adi daemon stopped (pid ${pid})\n`);
    return 0;
  },
});
