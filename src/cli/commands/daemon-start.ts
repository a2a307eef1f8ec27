import { AdiError } from '../../core/errors.js';
import type { DaemonClient, PongInfo } from '../../client/client.js';
import { spawnDaemon } from '../../client/spawn.js';
import { packageVersion } from '../../core/version.js';
import { isAlive } from '../../system/alive.js';
import { defineCommand, type CliIO } from '../command.js';
import { cliClient } from '../daemon-client.js';
import { withProgress } from '../progress.js';

export const command = defineCommand({
  name: 'daemon start',
  usage: `adi daemon start                      Start the daemon in the background (does nothing if it runs)
       adi daemon start NAME                 Start the service NAME (from services.toml or a plugin)
       adi daemon start NAME [options] -- COMMAND [ARGS...]
                                             Start an ad-hoc service running COMMAND`,
  args: [{ name: 'NAME', optional: true, service: true }],
  commandLine: 'COMMAND [ARGS...]',
  options: {
    env: { type: 'string', multiple: true, value: 'K=V', help: 'Set an environment variable' },
    cwd: { type: 'string', value: 'DIR', complete: 'dir', help: 'Working directory' },
    'no-restart': { type: 'boolean', help: 'Do not restart it when it exits' },
    'max-restarts': {
      type: 'string',
      value: 'N',
      help: 'Automatic restarts allowed within the restart window (default 5)',
    },
    'stop-timeout': { type: 'string', value: 'SECS', help: 'Seconds between SIGTERM and SIGKILL on stop (default 10)' },
  },
  description: 'The options describe an ad-hoc service, and go before or after NAME.',
  notes: `A daemon started from another version of adi is stopped and replaced.
Exit status 1 when the daemon runs but plugin services cannot reach it (with privilege separation,
its plugin socket could not be bound: the cause is printed, and 'adi daemon status' shows it too).`,
  async run({ values, positionals, commandLine }, io) {
    const name = positionals[0];
    if (name !== undefined) {
      const { startService } = await import('./service-start.js');
      return startService({ name, values, commandLine }, io);
    }
    if (commandLine !== null || Object.keys(values).length > 0) {
      throw new AdiError(
        'BAD_ARGUMENT',
        "An ad-hoc service needs a name: 'adi daemon start NAME [options] -- COMMAND [ARGS...]'.",
      );
    }
    return startDaemon(io);
  },
});

async function startDaemon(io: CliIO): Promise<number> {
  const client = cliClient(io);
  const ours = packageVersion();
  try {
    const pong = await client.ping();
    if (pong.version === ours) {
      io.stdout.write(`adi daemon is already running (pid ${pong.pid})\n`);
      return reportStart(io, await settled(client, pong));
    }
    io.stdout.write(`Replacing the running daemon ${pong.version} (pid ${pong.pid}) with ${ours}...\n`);
    await client.shutdown(true);
    client.close();
    await withProgress(io, `waiting for the old daemon (pid ${pong.pid}) to stop its services`, () =>
      waitForExit(pong.pid, DAEMON_STOP_WAIT_MS),
    );
  } catch (err) {
    if (!(err instanceof AdiError) || err.code !== 'DAEMON_NOT_RUNNING') throw err;
  }
  const spawned = spawnDaemon(client.paths, io.env);
  const pong = await withProgress(io, 'starting the daemon', async () =>
    settled(client, await client.waitUntilRunning(10_000, spawned.exited, spawned.failed)),
  );
  client.close();
  io.stdout.write(
    pong.pid === spawned.pid
      ? `adi daemon started (pid ${pong.pid})\n`
      : `adi daemon is already running (pid ${pong.pid})\n`,
  );
  return reportStart(io, pong);
}

/** How long start waits for a just-started daemon to try its plugin socket (it answers Ping before). */
const PLUGIN_SOCKET_WAIT_MS = 10_000;

/** The Pong once the plugin socket is no longer `pending` (bounded: then as it is). */
async function settled(client: DaemonClient, first: PongInfo): Promise<PongInfo> {
  const deadline = Date.now() + PLUGIN_SOCKET_WAIT_MS;
  let pong = first;
  let delay = 5;
  while (pong.plugin_socket?.state === 'pending' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
    pong = await client.ping();
  }
  return pong;
}

/**
 * A daemon whose plugin services cannot reach it is not a successful start: the cause goes to stderr
 * and the exit status is 1. (Name conflicts are not reported here: the daemon answers before it has
 * loaded the definitions; `adi daemon status` and `services` show them.)
 */
function reportStart(io: CliIO, pong: PongInfo): number {
  const ps = pong.plugin_socket;
  if (ps === undefined) return 0;
  if (ps.state === 'listening') {
    if (ps.error !== null) io.stderr.write(`adi: warning: plugin socket: ${ps.error}\n`);
    return 0;
  }
  const why =
    ps.state === 'failed' ? (ps.error ?? 'unknown error') : `it was not bound within ${PLUGIN_SOCKET_WAIT_MS / 1000} s`;
  io.stderr.write(
    `adi: the daemon runs (pid ${pong.pid}), but plugin services cannot reach it: the plugin socket${ps.address !== null ? ` ${ps.address}` : ''} is not listening: ${why}\n`,
  );
  return 1;
}

/** A graceful daemon stop waits for every service's stop_timeout (each at most 3600 s, in parallel). */
export const DAEMON_STOP_WAIT_MS = 3_660_000;

/**
 * Wait until a process is gone, bounded. An exited daemon not yet reaped (a zombie) is gone: its
 * parent is whatever adopted it, and some inits reap only every second or so.
 */
export async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    if (!isAlive(pid)) return;
    if (Date.now() > deadline) {
      throw new AdiError(
        'TIMEOUT',
        `The daemon (pid ${pid}) did not exit within ${Math.round(timeoutMs / 1000)} s; its services may be slow to stop.`,
      );
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}
