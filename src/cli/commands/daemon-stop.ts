import { AdiError } from '../../core/errors.js';
import { parseCommandArgs, type Command } from '../command.js';
import { cliClient } from '../daemon-client.js';
import { withProgress } from '../progress.js';
import { DAEMON_STOP_WAIT_MS, waitForExit } from './daemon-start.js';

export const command: Command = {
  name: 'daemon stop',
  summary: 'Stop the daemon, or a service',
  usage: `Usage:
  adi daemon stop              Stop the daemon gracefully: every service is stopped first; waits until it has exited
  adi daemon stop NAME         Stop one service (SIGTERM to its process group, SIGKILL after its stop timeout)
  adi daemon stop NAME --force Stop one service with SIGKILL at once`,
  async run(argv, io) {
    if (argv.length > 0 && !argv[0]?.startsWith('-')) {
      const { stopService } = await import('./service-stop.js');
      return stopService(argv, io);
    }
    parseCommandArgs('daemon stop', argv, {}, false);
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
    const running = io.stderr.isTTY !== true ? 0 : await client.listServices().then(
      (list) => list.filter((s) => s.pid !== null).length,
      () => 0,
    );
    await client.shutdown(true);
    client.close();
    const what = running > 0 ? `stopping the daemon and its ${running} running service${running === 1 ? '' : 's'}` : 'stopping the daemon';
    await withProgress(io, what, () => waitForExit(pid, DAEMON_STOP_WAIT_MS));
    io.stdout.write(`adi daemon stopped (pid ${pid})\n`);
    return 0;
  },
};
