// The plugin socket: plugin services run as ADI_USER and cannot reach the admin socket
// (0600, in the admin's 0700 data dir), so with privilege separation the daemon also listens on a
// second socket they can reach. What a connection may do is still decided by its token alone: on this
// socket only plugin tokens are accepted (the admin token is not, see daemon.ts), so reaching the
// socket grants nothing but Ping.
//
//   <dir>            owned by the daemon's user, 0711: others may pass through to the socket, not list
//                    or create anything in it. An existing dir is used only if it is a real directory
//                    (not a symlink) owned by us and writable by nobody else (/tmp is shared).
//   <dir>/plugins-<hash>.sock
//                    0660, group ADI_USER's group, when the daemon may give it that group (root, or an
//                    admin who is a member); otherwise 0666 — the token still decides.
//
// The default <dir> of a non-root daemon is in /tmp, where any user may create it first. Such a
// directory is never used; the daemon makes a fresh one of its own beside it (mkdtemp: a name nobody
// can predict) and says so in `adi daemon status`. A name the admin chose (ADI_DAEMON_PLUGIN_SOCKET)
// is used as given: when it cannot be bound (an abstract @name another process holds), the daemon runs
// without the plugin socket and reports why in Ping, `adi daemon status` and `adi daemon start`.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import type { Endpoint } from '../core/paths.js';
import { listen } from '../wire/transport.js';
import type { Logger } from '../core/logger.js';

export const PLUGIN_DIR_MODE = 0o711;
export const PLUGIN_SOCKET_MODE = 0o660;
/** Mode when the socket cannot be given to ADI_USER's group (a non-root admin outside that group). */
export const PLUGIN_SOCKET_OPEN_MODE = 0o666;
/** Plugin services are few; a bound keeps a flood of connections to a world-reachable socket cheap. */
export const PLUGIN_MAX_CONNECTIONS = 256;

export interface PluginSocketOptions {
  endpoint: Endpoint;
  /** ADI_USER's primary group: the socket's group. */
  gid: number;
  log: Logger;
}

/**
 * Create the socket's directory (or check an existing one) so that nobody but the daemon's user can
 * plant or replace anything in it.
 */
export function preparePluginDir(dir: string): void {
  const uid = process.getuid?.() ?? 0;
  try {
    fs.mkdirSync(dir, { mode: PLUGIN_DIR_MODE });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new AdiError(
        'BAD_CONFIG',
        `Cannot create the plugin socket directory ${dir}: ${(err as Error).message}. Set ADI_DAEMON_PLUGIN_SOCKET to a path in a directory you own.`,
        { cause: err },
      );
    }
  }
  const problem = pluginDirProblem(dir, uid);
  if (problem !== null) {
    throw new AdiError(
      'BAD_CONFIG',
      `The plugin socket directory ${dir} ${problem}; refusing to use it. Remove it, or set ADI_DAEMON_PLUGIN_SOCKET to a path in a directory only you can write.`,
    );
  }
  if ((fs.lstatSync(dir).mode & 0o777) !== PLUGIN_DIR_MODE) fs.chmodSync(dir, PLUGIN_DIR_MODE);
}

/** What makes an existing `dir` unfit for the socket ("belongs to uid 1001, ..."), or null. */
function pluginDirProblem(dir: string, uid: number): string | null {
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== uid) return `belongs to uid ${st.uid}, not to the daemon's user (${uid})`;
  if ((st.mode & 0o022) !== 0) return 'is writable by other users';
  return null;
}

/** Where the plugin socket was bound: its endpoint and, for a fresh directory, that directory. */
export interface PluginSocketPlace {
  endpoint: Endpoint;
  /** A directory made for this daemon alone (removed at close), or null. */
  ownDir: string | null;
  /** Why the socket is not at the usual place, for the admin; null when it is. */
  note: string | null;
}

/**
 * For the default address: the usual place when its directory is ours (preparePluginDir), else a fresh
 * directory of our own beside it. Throws (BAD_CONFIG) only when neither can be had.
 */
export function defaultPluginPlace(endpoint: Endpoint): PluginSocketPlace {
  if (endpoint.file === null) return { endpoint, ownDir: null, note: null };
  const dir = path.dirname(endpoint.file);
  let problem: string | null;
  try {
    fs.mkdirSync(dir, { mode: PLUGIN_DIR_MODE });
    problem = null;
  } catch (err) {
    // Any other failure: preparePluginDir throws it with its hint.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') preparePluginDir(dir);
    problem = pluginDirProblem(dir, process.getuid?.() ?? 0);
  }
  if (problem === null) {
    preparePluginDir(dir);
    return { endpoint, ownDir: null, note: null };
  }
  const ownDir = fs.mkdtempSync(`${dir}-`);
  fs.chmodSync(ownDir, PLUGIN_DIR_MODE);
  const file = path.join(ownDir, path.basename(endpoint.file));
  return {
    endpoint: { ...endpoint, address: file, display: file, file },
    ownDir,
    note: `the usual directory ${dir} ${problem} (another user may have made it first, to block or intercept the plugin socket); listening in ${ownDir} instead`,
  };
}

/** Listen on the plugin endpoint; the caller attaches the 'connection' handler and closes it. */
export async function bindPluginSocket(opts: PluginSocketOptions): Promise<net.Server> {
  const { endpoint, log } = opts;
  const server = net.createServer();
  server.maxConnections = PLUGIN_MAX_CONNECTIONS;
  if (endpoint.file === null) {
    // An abstract socket has no permissions at all: anyone may connect, and the token decides.
    await listen(server, endpoint);
    return server;
  }
  const file = endpoint.file;
  preparePluginDir(path.dirname(file));
  // The daemon's lock is held, so a socket file here is a dead daemon's: replace it. Never delete
  // anything that is not a socket.
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(file);
  } catch {
    st = null;
  }
  if (st !== null) {
    if (!st.isSocket())
      throw new AdiError(
        'BAD_CONFIG',
        `${file} exists and is not a socket; move it away or set ADI_DAEMON_PLUGIN_SOCKET.`,
      );
    fs.rmSync(file, { force: true });
  }
  // Bound 0600 first, widened once its group is right: no moment in which the wrong users may connect.
  const previous = process.umask(0o177);
  try {
    await listen(server, endpoint);
  } finally {
    process.umask(previous);
  }
  let mode = PLUGIN_SOCKET_MODE;
  try {
    fs.chownSync(file, -1, opts.gid);
  } catch (err) {
    mode = PLUGIN_SOCKET_OPEN_MODE;
    log.info(
      `plugin socket: cannot give ${file} to group ${opts.gid} (${(err as NodeJS.ErrnoException).code ?? String(err)}); making it ${mode.toString(8)}: a connection still needs a plugin token to do more than Ping`,
    );
  }
  fs.chmodSync(file, mode);
  return server;
}

/** Close the server and remove its socket file (only if it is still a socket), and `ownDir` if given. */
export function closePluginSocket(server: net.Server, endpoint: Endpoint, ownDir: string | null = null): void {
  server.close();
  if (endpoint.file === null) return;
  try {
    if (fs.lstatSync(endpoint.file).isSocket()) fs.rmSync(endpoint.file, { force: true });
  } catch {
    // already gone
  }
  if (ownDir !== null) {
    try {
      fs.rmdirSync(ownDir);
    } catch {
      // not empty (something else was put there) or gone: left as it is
    }
  }
}

/** A bind failure in words the admin can act on. */
export function describeBindError(endpoint: Endpoint, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' && endpoint.file === null) {
    return `${endpoint.display} is already bound by another process (an abstract socket name is open to every local user, who can take it first). Set ADI_DAEMON_PLUGIN_SOCKET to a path in a directory only the daemon's user can write (or unset it) and restart the daemon; 'adi daemon reload' tries the same address again`;
  }
  return `cannot listen on ${endpoint.display}: ${err instanceof Error ? err.message : String(err)}`;
}
