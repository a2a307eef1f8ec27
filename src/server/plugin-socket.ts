// The plugin socket (issue 4 item 5): plugin services run as ADI_USER and cannot reach the admin socket
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

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AdiError } from '../errors.js';
import type { Endpoint } from '../paths.js';
import { listen } from '../transport.js';
import type { Logger } from './logger.js';

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
      throw new AdiError('BAD_CONFIG', `Cannot create the plugin socket directory ${dir}: ${(err as Error).message}. Set ADI_DAEMON_PLUGIN_SOCKET to a path in a directory you own.`, { cause: err });
    }
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    const what = !st.isDirectory() ? 'is not a directory' : st.uid !== uid ? `belongs to uid ${st.uid}, not to the daemon's user (${uid})` : 'is writable by other users';
    throw new AdiError('BAD_CONFIG', `The plugin socket directory ${dir} ${what}; refusing to use it. Remove it, or set ADI_DAEMON_PLUGIN_SOCKET to a path in a directory only you can write.`);
  }
  if ((st.mode & 0o777) !== PLUGIN_DIR_MODE) fs.chmodSync(dir, PLUGIN_DIR_MODE);
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
    if (!st.isSocket()) throw new AdiError('BAD_CONFIG', `${file} exists and is not a socket; move it away or set ADI_DAEMON_PLUGIN_SOCKET.`);
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
    log.info(`plugin socket: cannot give ${file} to group ${opts.gid} (${(err as NodeJS.ErrnoException).code ?? String(err)}); making it ${mode.toString(8)}: a connection still needs a plugin token to do more than Ping`);
  }
  fs.chmodSync(file, mode);
  return server;
}

/** Close the server and remove its socket file (only if it is still a socket). */
export function closePluginSocket(server: net.Server, endpoint: Endpoint): void {
  server.close();
  if (endpoint.file === null) return;
  try {
    if (fs.lstatSync(endpoint.file).isSocket()) fs.rmSync(endpoint.file, { force: true });
  } catch {
    // already gone
  }
}
