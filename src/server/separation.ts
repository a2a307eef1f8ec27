// The daemon's side of privilege separation (issue 4 items 5 and 6): the facts services are launched
// with (run-as.ts), the plugin socket that exists only while separation is active, and the plugin
// tokens. Separation is checked at start and again on Reload / SIGHUP (`adi daemon setup` may have run
// meanwhile); a change applies to each service at its next start.

import os from 'node:os';
import type net from 'node:net';
import type { Audit } from '../executor/audit.js';
import type { Executor } from '../executor/executor.js';
import { lookupUser, type UserEntry } from '../executor/privilege.js';
import { resolveCommand } from '../executor/resolve.js';
import { resolvePluginEndpoint, type Endpoint, type Paths } from '../paths.js';
import type { ServicePrivilege } from '../services/run-as.js';
import type { Authenticator } from './auth.js';
import type { Logger } from './logger.js';
import { bindPluginSocket, closePluginSocket } from './plugin-socket.js';

export interface SeparationOptions {
  paths: Paths;
  log: Logger;
  auth: Authenticator;
  executor: Executor;
  audit: Audit;
  /** The daemon's environment (ADI_DAEMON_PLUGIN_SOCKET). */
  env?: NodeJS.ProcessEnv;
  /** Serve a connection made on the plugin socket. */
  onPluginConnection(socket: net.Socket): void;
}

function optionalCommand(name: string): string | null {
  try {
    return resolveCommand(name);
  } catch {
    return null;
  }
}

function selfName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

export class DaemonSeparation {
  /** Where the plugin socket goes; null when ADI_DAEMON_PLUGIN_SOCKET is unusable (see endpointError). */
  readonly pluginEndpoint: Endpoint | null;
  private readonly endpointError: string | null;
  private readonly opts: SeparationOptions;
  private server: net.Server | null = null;
  private adi: UserEntry | null | undefined;
  private busy: Promise<void> = Promise.resolve();
  private closed = false;
  /** What launch.ts needs; reads the current state on every call. */
  readonly servicePrivilege: ServicePrivilege;

  constructor(opts: SeparationOptions) {
    this.opts = opts;
    const { paths, auth, audit } = opts;
    let endpoint: Endpoint | null = null;
    let endpointError: string | null = null;
    try {
      endpoint = resolvePluginEndpoint(paths.dataDir, { env: opts.env ?? process.env });
    } catch (err) {
      endpointError = err instanceof Error ? err.message : String(err);
    }
    this.pluginEndpoint = endpoint;
    this.endpointError = endpointError;
    const sudo = optionalCommand('sudo');
    const kill = optionalCommand('kill');
    this.servicePrivilege = {
      separation: () => opts.executor.separation,
      adiUser: paths.adiUser,
      adiRootUser: paths.adiRootUser,
      adiEntry: () => {
        if (this.adi === undefined) this.adi = lookupUser(paths.adiUser);
        return this.adi;
      },
      isRoot: process.getuid?.() === 0,
      selfUser: selfName(),
      sudo,
      kill,
      socketFor: (kind) => (kind === 'admin' ? paths.socket.display : this.pluginSocket),
      pluginToken: (plugin) => auth.pluginToken(plugin),
      auditPrivileged: ({ service, argv, result }) => {
        audit.record({ identity: 'admin', action: 'privileged_service', argv, reason: `service ${service} (privileged = true)`, result, as: 'root' });
      },
    };
  }

  get active(): boolean {
    return this.opts.executor.separation.active;
  }

  /** The plugin socket's address while it listens, else null. */
  get pluginSocket(): string | null {
    return this.server !== null && this.pluginEndpoint !== null ? this.pluginEndpoint.display : null;
  }

  /** Check the system again, then open or close the plugin socket to match. */
  refresh(): Promise<void> {
    const before = this.active;
    const status = this.opts.executor.refreshSeparation();
    this.adi = undefined;
    if (status.active !== before) this.opts.log.info(`privilege separation is now ${status.active ? 'active' : 'inactive'}: ${status.reason}`);
    return this.apply();
  }

  /** Listen on the plugin socket when separation is active, and only then. Never throws (logs). */
  apply(): Promise<void> {
    const next = this.busy.then(() => this.reconcile());
    this.busy = next.catch(() => undefined);
    return next;
  }

  private async reconcile(): Promise<void> {
    const { log } = this.opts;
    if (this.closed) return;
    if (this.active && this.server === null) {
      const endpoint = this.pluginEndpoint;
      if (endpoint === null) {
        log.error(`plugin socket: ${this.endpointError ?? 'no address'}; plugin services cannot reach the daemon`);
        return;
      }
      const entry = this.servicePrivilege.adiEntry();
      if (entry === null) {
        log.error(`plugin socket: the plugin user ${this.opts.paths.adiUser} has no passwd entry; not listening for plugins`);
        return;
      }
      try {
        const server = await bindPluginSocket({ endpoint, gid: entry.gid, log });
        if (this.closed) {
          closePluginSocket(server, endpoint);
          return;
        }
        server.on('connection', (socket) => this.opts.onPluginConnection(socket));
        this.server = server;
        log.info(`listening for plugin services on ${endpoint.display}`);
      } catch (err) {
        // The admin socket and every service still work; plugin services just cannot call the daemon.
        log.error(`plugin socket: cannot listen on ${endpoint.display}: ${err instanceof Error ? err.message : String(err)}`);
      }
    } else if (!this.active && this.server !== null && this.pluginEndpoint !== null) {
      closePluginSocket(this.server, this.pluginEndpoint);
      this.server = null;
      log.info('privilege separation is off: no longer listening for plugin services');
    }
  }

  /** Plugins whose service definitions are gone lose their tokens. */
  revokeGone(definedPlugins: ReadonlySet<string>): void {
    const gone = this.opts.auth.revokeExcept(definedPlugins);
    if (gone.length > 0) this.opts.log.info(`revoked the tokens of plugins no longer defined: ${gone.join(', ')}`);
  }

  /** Stop listening and remove the plugin socket (daemon shutdown). */
  close(): void {
    this.closed = true;
    if (this.server !== null && this.pluginEndpoint !== null) closePluginSocket(this.server, this.pluginEndpoint);
    this.server = null;
  }
}
