// The daemon's lifecycle: take the single-instance lock, bind the
// socket, write the pid and token files, start the services, serve, and on a signal or a Shutdown
// request stop every service before removing what it created and exiting.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import { DAEMON_ONLY_ENV, STATUS_FD_ENV, type Paths } from '../core/paths.js';
import { DEFAULT_MAX_FRAME } from '../protocol/types.js';
import { AuditLog, auditFile } from '../executor/audit.js';
import { Executor } from '../executor/executor.js';
import { executorSettingsFromEnv } from '../executor/settings.js';
import { pluginOf } from '../services/launch.js';
import { DAEMON_INSTANCE_ENV, SERVICE_ID_ENV, SERVICE_NAME_ENV } from '../system/process-group.js';
import { ServiceManager, type ReloadResult, type ServiceSource } from '../services/manager.js';
import { connect, listen } from '../wire/transport.js';
import { packageVersion } from '../core/version.js';
import { Authenticator, newToken } from './auth.js';
import { Connection, DEFAULT_LIMITS, type ConnectionLimits } from './connection.js';
import type { Identity } from '../core/identity.js';
import type { DaemonState } from './context.js';
import {
  DISK_RESERVE_BYTES,
  DiskReserve,
  ensurePrivateDir,
  isDiskFull,
  removeOwnPidFile,
  removeStaleTemps,
  writeFileAtomic,
} from '../core/files.js';
import { isAlive } from '../system/alive.js';
import { journalFile } from '../services/state-file.js';
import { acquireLock, type Lock } from './lock.js';
import { limitsFromEnv } from './limits.js';
import { FdBudget } from './fd-budget.js';
import { FileLogger } from '../core/logger.js';
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

/** The disk reserve's name in the data dir (see DiskReserve). */
export const DISK_RESERVE_NAME = 'disk-reserve';

/** What the first phase of a start (lock, token, socket, pid file) hands on. */
interface Begun {
  log: FileLogger;
  lock: Lock;
  server: net.Server;
  adminToken: string;
  reserve: DiskReserve;
  /** What is degraded in the daemon itself (the disk reserve used, the pid file not written). */
  problems: string[];
}

export async function runDaemon(options: DaemonOptions): Promise<number> {
  const status = StartStatus.take();
  // A daemon started from inside a service (its `adi daemon start`) must not pass that run's markers
  // on to what it spawns itself: its services get their own, and nothing else should carry any.
  for (const name of [SERVICE_ID_ENV, SERVICE_NAME_ENV, DAEMON_INSTANCE_ENV]) delete process.env[name];
  // What the launcher set for the daemon's own allocator (spawn.ts) is not the services' business.
  for (const name of (process.env[DAEMON_ONLY_ENV] ?? '').split(',')) if (name !== '') delete process.env[name];
  delete process.env[DAEMON_ONLY_ENV];
  let begun: Begun | number;
  try {
    begun = await begin(options);
  } catch (err) {
    status.end(`error: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
  if (typeof begun === 'number') {
    status.end('');
    return begun;
  }
  status.end('ok');
  const { paths } = options;
  const { log, lock, server, adminToken, reserve, problems: daemonProblems } = begun;
  const auth = new Authenticator(adminToken);
  const version = packageVersion();
  // Run / SudoRun and who services run as: separation is checked now and on every reload.
  const settings = executorSettingsFromEnv();
  for (const w of settings.warnings) log.warn(w);
  const audit = new AuditLog(auditFile(paths), log, settings.audit);
  const executor = new Executor({ paths, log, audit, limits: settings.limits });
  log.info(`privilege separation ${executor.separation.active ? 'active' : 'inactive'}: ${executor.separation.reason}`);
  const separation = new DaemonSeparation({
    paths,
    log,
    auth,
    executor,
    audit,
    // On the plugin socket only plugin tokens count: the admin token is refused there (section 8).
    onPluginConnection: (socket) =>
      accept(socket, (token) =>
        auth.identifyPlugin(token, () => {
          log.warn('a client offered the admin token on the plugin socket; it was treated as anonymous');
        }),
      ),
  });
  // A reserve of descriptors for the admin (fd-budget.ts): services and other clients never take the last ones.
  const fds = new FdBudget();
  if (fds.limit !== null)
    log.info(`file descriptors: limit ${fds.limit}, ${fds.reserve} kept free for admin connections`);
  const services = new ServiceManager({
    paths,
    log,
    privilege: separation.servicePrivilege,
    spawnRefusal: () => fds.spawnRefusal(),
    ...(options.sources !== undefined ? { sources: options.sources } : {}),
  });
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
    pluginSocket: () => separation.status(),
    reload: () => reload(),
    problems: () => [...daemonProblems, ...services.problems()],
    requestShutdown: (graceful) => {
      // Let the Ok for the Shutdown request leave before the sockets go.
      setImmediate(() => void shutdown(graceful));
    },
  };

  const limits: ConnectionLimits = {
    maxFrame: DEFAULT_MAX_FRAME,
    ...DEFAULT_LIMITS,
    ...limitsFromEnv(),
    ...options.limits,
  };
  /** Connections that proved to be the admin: never closed to make room. */
  const admins = new WeakSet<Connection>();
  let evicted = 0;
  let evictionLoggedAt = 0;
  function accept(socket: net.Socket, authenticate: (token: string | null) => Identity): void {
    if (fds.acceptedIntoReserve()) makeRoom();
    const connection: Connection = new Connection(
      socket,
      state,
      (token) => {
        const identity = authenticate(token);
        if (identity.kind === 'admin') admins.add(connection);
        return identity;
      },
      limits,
      () => shuttingDown,
    );
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  }
  /**
   * The daemon is inside its descriptor reserve: close the two oldest connections that have not
   * proved to be the admin (one for the connection just accepted, one to win back room), so that the
   * reserve stays free for an admin. Logged at most every 10 s.
   */
  function makeRoom(): void {
    let closed = 0;
    for (const c of connections) {
      if (admins.has(c)) continue;
      connections.delete(c);
      c.destroy();
      if (++closed === 2) break;
    }
    evicted += closed;
    if (evicted > 0 && Date.now() - evictionLoggedAt > 10_000) {
      log.warn(
        `file descriptors: ${fds.inUse()} of ${fds.limit} open; closed ${evicted} non-admin connection(s) (oldest first) to keep ${fds.reserve} free for admin connections`,
      );
      evictionLoggedAt = Date.now();
      evicted = 0;
    }
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
    // Counts of rate-limited audit entries still pending.
    audit.flush();
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
  process.on('unhandledRejection', (err) =>
    log.error(`unhandled rejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
  );

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
  // Made again when there is room: the next start on a full disk may need it.
  if (!reserve.ensure() && daemonProblems.length === 0) {
    const message = `no room for the ${DISK_RESERVE_BYTES / 1024} KiB disk reserve in ${paths.dataDir}: a later start on a full disk would fail`;
    log.warn(message);
    daemonProblems.push(message);
  }
  return exited;
}

/**
 * The first phase of a start: the lock, the token, the socket and the pid file. A full data disk does
 * not stop it while there is a disk reserve to free (files.ts). Returns an exit code instead when
 * another daemon runs.
 */
async function begin(options: DaemonOptions): Promise<Begun | number> {
  const { paths } = options;
  const reserve = new DiskReserve(path.join(paths.dataDir, DISK_RESERVE_NAME));
  const problems: string[] = [];
  let log: FileLogger | null = null;
  const onFull = (): void => {
    const message = `the disk holding ${paths.dataDir} is full: the daemon freed its ${DISK_RESERVE_BYTES / 1024} KiB disk reserve to start; logs and the crash-recovery state may not be written until space is freed`;
    log?.warn(message);
    problems.push(message);
  };
  const write = <T>(what: string, fn: () => T): T => {
    try {
      return reserve.retryOnFull(fn, onFull);
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      throw new AdiError(
        'DAEMON_START_FAILED',
        `cannot write ${what}: the disk holding ${paths.dataDir} is full (${(err as NodeJS.ErrnoException).code}) and the daemon has no disk reserve left to free; free some space, then start it again`,
      );
    }
  };
  write(paths.dataDir, () => {
    ensurePrivateDir(paths.dataDir);
    ensurePrivateDir(paths.logsDir);
    fs.mkdirSync(path.dirname(paths.logFile), { recursive: true, mode: 0o700 });
  });
  log = new FileLogger(paths.logFile, options.foreground ? process.stderr : null);

  const taken = write(paths.lockFile, () => acquireLock(paths.lockFile));
  if (!('release' in taken)) {
    log.info(`another daemon (pid ${taken.heldBy}) holds ${paths.lockFile}; not starting a second one`);
    log.close();
    return EXIT_ALREADY_RUNNING;
  }
  const lock: Lock = taken;
  try {
    // What earlier attempts left when they died or failed mid-write (only ours: their pids are gone).
    const stale = removeStaleTemps(
      [paths.lockFile, paths.stateFile, journalFile(paths.stateFile), paths.tokenFile, paths.pidFile],
      isAlive,
    );
    if (stale.length > 0)
      log.info(
        `removed ${stale.length} temporary file(s) left by earlier attempts: ${stale.map((f) => path.basename(f)).join(', ')}`,
      );

    // The token is in place before the socket accepts anyone: a client that connects the moment the
    // socket appears must find the token it proves itself with. (The lock makes us the only daemon of
    // this data dir, so no running daemon's token is replaced.)
    const adminToken = newToken();
    write(paths.tokenFile, () => writeFileAtomic(paths.tokenFile, adminToken, 0o600));

    let server: net.Server;
    try {
      server = await bindSocket(paths, log);
    } catch (err) {
      if (err instanceof AdiError && err.code === 'SERVICE_EXISTS') {
        lock.release();
        log.info(err.message);
        log.close();
        return EXIT_ALREADY_RUNNING;
      }
      fs.rmSync(paths.tokenFile, { force: true });
      log.error(`cannot listen: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
    try {
      write(paths.pidFile, () => writeFileAtomic(paths.pidFile, `${process.pid}\n`, 0o644));
    } catch (err) {
      // Nothing of the daemon needs it (clients find the daemon by its socket): degraded, not fatal.
      const message = `cannot write the pid file ${paths.pidFile}: ${err instanceof Error ? err.message : String(err)}`;
      log.warn(message);
      problems.push(message);
    }
    return { log, lock, server, adminToken, reserve, problems };
  } catch (err) {
    lock.release();
    log.error(`cannot start: ${err instanceof Error ? err.message : String(err)}`);
    log.close();
    throw err;
  }
}

/**
 * The daemon's end of the status pipe `adi daemon start` reads (spawn.ts): "ok" once it listens, or
 * "error: <why>", then closed, so that no service inherits it.
 */
class StartStatus {
  private constructor(private fd: number | null) {}

  static take(): StartStatus {
    const raw = process.env[STATUS_FD_ENV];
    // Not passed on to services (their environment starts from the daemon's).
    delete process.env[STATUS_FD_ENV];
    if (raw === undefined || !/^\d+$/.test(raw) || Number(raw) < 3) return new StartStatus(null);
    const fd = Number(raw);
    try {
      // Only a pipe or socket is ours to write to and close; anything else at that number is left alone.
      const st = fs.fstatSync(fd);
      return new StartStatus(st.isFIFO() || st.isSocket() ? fd : null);
    } catch {
      return new StartStatus(null);
    }
  }

  end(text: string): void {
    if (this.fd === null) return;
    try {
      if (text !== '') fs.writeSync(this.fd, `${text.slice(0, 4000)}\n`);
    } catch {
      // the starter has gone: nobody to tell
    }
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = null;
  }
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
        throw new AdiError(
          'BAD_CONFIG',
          `${endpoint.file} exists and is not a socket; move it away or set ADI_DAEMON_SOCKET to another path.`,
        );
      }
      try {
        const probe = await connect(endpoint, 1000);
        probe.destroy();
        throw new AdiError(
          'SERVICE_EXISTS',
          `a daemon already answers at ${endpoint.display}; not starting a second one`,
        );
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
      throw new AdiError(
        'SERVICE_EXISTS',
        `a daemon already listens on ${endpoint.display}; not starting a second one`,
      );
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
