// The daemon's lifecycle (the seed's DaemonServer::run): take the single-instance lock, bind the
// socket, write the pid and token files, start the services, serve, and on a signal or a Shutdown
// request stop every service before removing what it created and exiting.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AdiError } from '../errors.js';
import type { Paths } from '../paths.js';
import { DEFAULT_MAX_FRAME } from '../protocol/types.js';
import { AuditLog, auditFile } from '../executor/audit.js';
import { Executor } from '../executor/executor.js';
import { pluginOf } from '../services/launch.js';
import { ServiceManager, type ReloadResult, type ServiceSource } from '../services/manager.js';
import { connect, listen } from '../transport.js';
import { packageVersion } from '../version.js';
import { Authenticator, newToken } from './auth.js';
import { Connection, DEFAULT_LIMITS, type ConnectionLimits } from './connection.js';
import type { DaemonState, Identity } from './context.js';
import { ensurePrivateDir, removeOwnPidFile, removeStaleTemps, writeFileAtomic } from './files.js';
import { isAlive } from '../platform/alive.js';
import { journalFile } from '../services/state-file.js';
import { acquireLock, type Lock } from './lock.js';
import { limitsFromEnv } from './limits.js';
import { FileLogger } from './logger.js';
import { DaemonSeparation } from './separation.js';

export interface DaemonOptions {
  paths: Paths;
  /** `adi daemon run` in a terminal: also log to stderr. */
  foreground: boolean;
  limits?: Partial<ConnectionLimits>;
  /** Service definition sources besides the services file (e.g. installed plugins). */
  sources?: ServiceSource[];
}

/** Exit code when another daemon already runs (the start lock or socket is held by a live daemon). */
export const EXIT_ALREADY_RUNNING = 0;

export async function runDaemon(options: DaemonOptions): Promise<number> {
  const { paths } = options;
  ensurePrivateDir(paths.dataDir);
  ensurePrivateDir(paths.logsDir);
  fs.mkdirSync(path.dirname(paths.logFile), { recursive: true, mode: 0o700 });
  const log = new FileLogger(paths.logFile, options.foreground ? process.stderr : null);

  const taken = acquireLock(paths.lockFile);
  if (!('release' in taken)) {
    log.info(`another daemon (pid ${taken.heldBy}) holds ${paths.lockFile}; not starting a second one`);
    log.close();
    return EXIT_ALREADY_RUNNING;
  }
  const lock: Lock = taken;
  // What earlier attempts left when they died or failed mid-write (only ours: their pids are gone).
  const stale = removeStaleTemps([paths.lockFile, paths.stateFile, journalFile(paths.stateFile), paths.tokenFile, paths.pidFile], isAlive);
  if (stale.length > 0) log.info(`removed ${stale.length} temporary file(s) left by earlier attempts: ${stale.map((f) => path.basename(f)).join(', ')}`);

  // The token is in place before the socket accepts anyone: a client that connects the moment the
  // socket appears must find the token it proves itself with. (The lock makes us the only daemon of
  // this data dir, so no running daemon's token is replaced.)
  const adminToken = newToken();
  writeFileAtomic(paths.tokenFile, adminToken, 0o600);

  let server: net.Server;
  try {
    server = await bindSocket(paths, log);
  } catch (err) {
    lock.release();
    if (err instanceof AdiError && err.code === 'SERVICE_EXISTS') {
      log.info(err.message);
      log.close();
      return EXIT_ALREADY_RUNNING;
    }
    fs.rmSync(paths.tokenFile, { force: true });
    log.error(`cannot listen: ${err instanceof Error ? err.message : String(err)}`);
    log.close();
    throw err;
  }

  const auth = new Authenticator(adminToken);
  writeFileAtomic(paths.pidFile, `${process.pid}\n`, 0o644);

  const version = packageVersion();
  // Run / SudoRun and who services run as (issue 4): separation is checked now and on every reload.
  const audit = new AuditLog(auditFile(paths), log);
  const executor = new Executor({ paths, log, audit });
  log.info(`privilege separation ${executor.separation.active ? 'active' : 'inactive'}: ${executor.separation.reason}`);
  const separation = new DaemonSeparation({
    paths,
    log,
    auth,
    executor,
    audit,
    // On the plugin socket only plugin tokens count: the admin token is refused there (section 8).
    onPluginConnection: (socket) => accept(socket, (token) => auth.identifyPlugin(token, () => {
      log.warn('a client offered the admin token on the plugin socket; it was treated as anonymous');
    })),
  });
  /** What is degraded in the daemon itself (a disk reserve used, a pid file not written). */
  const daemonProblems: string[] = [];
  const services = new ServiceManager({ paths, log, privilege: separation.servicePrivilege, ...(options.sources !== undefined ? { sources: options.sources } : {}) });
  // The socket already listens: requests by name wait until init() has loaded the definitions.
  services.holdRequestsUntilLoaded();
  let shuttingDown = false;
  const connections = new Set<Connection>();
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));

  const state: DaemonState = {
    paths,
    log,
    version,
    startedAt: Date.now(),
    services,
    executor,
    separation: () => executor.separation.active,
    reload: () => reload(),
    problems: () => [...daemonProblems, ...services.problems()],
    requestShutdown: (graceful) => {
      // Let the Ok for the Shutdown request leave before the sockets go.
      setImmediate(() => void shutdown(graceful));
    },
  };

  const limits: ConnectionLimits = { maxFrame: DEFAULT_MAX_FRAME, ...DEFAULT_LIMITS, ...limitsFromEnv(), ...options.limits };
  function accept(socket: net.Socket, authenticate: (token: string | null) => Identity): void {
    const connection = new Connection(socket, state, authenticate, limits, () => shuttingDown);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  }
  server.on('connection', (socket) => accept(socket, (token) => auth.identify(token)));

  /** Reload / SIGHUP: check separation again, re-read the definitions, drop tokens of gone plugins. */
  async function reload(): Promise<ReloadResult> {
    await separation.refresh();
    const result = await services.reload();
    const plugins = new Set<string>();
    for (const info of services.list()) {
      const plugin = pluginOf(services.definition(info.name), info.name);
      if (plugin !== null) plugins.add(plugin);
    }
    separation.revokeGone(plugins);
    return result;
  }

  async function shutdown(graceful: boolean): Promise<void> {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info(`shutting down (${graceful ? 'graceful: stopping services' : 'immediate: killing services'})`);
    server.close();
    separation.close();
    try {
      if (graceful) await services.stopAll();
      else await Promise.allSettled(services.list().map((s) => services.stop(s.name, true)));
    } catch (err) {
      log.error(`stopping services: ${err instanceof Error ? err.message : String(err)}`);
    }
    for (const c of connections) c.destroy();
    cleanup(paths, lock);
    log.info('daemon stopped');
    log.close();
    resolveExit(0);
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    log.info(`received ${signal}`);
    void shutdown(true);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {
    log.info('received SIGHUP: reloading the services file');
    reload().catch((err: unknown) => log.error(`reload failed: ${err instanceof Error ? err.message : String(err)}`));
  });
  // A supervisor must outlive its own bugs: log them and keep the children supervised.
  process.on('uncaughtException', (err) => log.error(`uncaught exception: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => log.error(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));

  log.info(`daemon ${version} started, pid ${process.pid}, listening on ${paths.socket.display}`);
  try {
    await separation.apply();
  } catch (err) {
    log.error(`privilege separation: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    await services.init();
  } catch (err) {
    log.error(`starting services: ${err instanceof Error ? err.message : String(err)}`);
  }
  return exited;
}

/**
 * Listen on the endpoint. A socket file left by a dead daemon is replaced; one that still answers
 * belongs to a live daemon (reported as SERVICE_EXISTS so the caller steps aside); anything that is
 * not a socket is never deleted.
 */
async function bindSocket(paths: Paths, log: FileLogger): Promise<net.Server> {
  const endpoint = paths.socket;
  const server = net.createServer({ pauseOnConnect: false });
  if (endpoint.file !== null) {
    const dir = path.dirname(endpoint.file);
    if (!fs.existsSync(dir)) ensurePrivateDir(dir);
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(endpoint.file);
    } catch {
      st = null;
    }
    if (st !== null) {
      if (!st.isSocket()) {
        throw new AdiError('BAD_CONFIG', `${endpoint.file} exists and is not a socket; move it away or set ADI_DAEMON_SOCKET to another path.`);
      }
      try {
        const probe = await connect(endpoint, 1000);
        probe.destroy();
        throw new AdiError('SERVICE_EXISTS', `a daemon already answers at ${endpoint.display}; not starting a second one`);
      } catch (err) {
        if (err instanceof AdiError && err.code === 'SERVICE_EXISTS') throw err;
        log.info(`removing a stale socket left at ${endpoint.file}`);
        fs.rmSync(endpoint.file, { force: true });
      }
    }
    // Create the socket 0600 from the start: no window in which another user could connect.
    const previous = process.umask(0o177);
    try {
      await listen(server, endpoint);
    } finally {
      process.umask(previous);
    }
    fs.chmodSync(endpoint.file, 0o600);
    return server;
  }
  try {
    await listen(server, endpoint);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new AdiError('SERVICE_EXISTS', `a daemon already listens on ${endpoint.display}; not starting a second one`);
    }
    throw err;
  }
  return server;
}

function cleanup(paths: Paths, lock: Lock): void {
  if (paths.socket.file !== null) fs.rmSync(paths.socket.file, { force: true });
  fs.rmSync(paths.tokenFile, { force: true });
  removeOwnPidFile(paths.pidFile);
  lock.release();
}
