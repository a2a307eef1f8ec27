// The daemon's side of privilege separation: the facts services are launched
// with (run-as.ts), the plugin socket that exists only while separation is active, and the plugin
// tokens. Separation is checked at start and again on Reload / SIGHUP (`adi daemon setup` may have run
// meanwhile); a change applies to each service at its next start.

import fs from 'node:fs';
import type net from 'node:net';
import type { Audit } from '../executor/audit.js';
import type { Executor } from '../executor/executor.js';
import { resolvePluginEndpoint, type Endpoint, type Paths } from '../core/paths.js';
import type { ServicePrivilege } from '../system/run-as.js';
import type { Authenticator } from './auth.js';
import type { Logger } from '../core/logger.js';
import type { PluginSocketStatus } from '../protocol/types.js';
import {
  bindPluginSocket,
  closePluginSocket,
  defaultPluginPlace,
  describeBindError,
  type PluginSocketPlace,
} from './plugin-socket.js';

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

export class DaemonSeparation {
  /** Where the plugin socket goes; null when ADI_DAEMON_PLUGIN_SOCKET is unusable (see endpointError). */
  readonly pluginEndpoint: Endpoint | null;
  private readonly endpointError: string | null;
  /** ADI_DAEMON_PLUGIN_SOCKET was set: that address is used as given, never replaced. */
  private readonly chosen: boolean;
  private readonly opts: SeparationOptions;
  private server: net.Server | null = null;
  /** Where the server listens (the default address may have moved to a fresh directory). */
  private place: PluginSocketPlace | null = null;
  /** Why the last attempt to listen failed; null after a success or before any attempt. */
  private failure: string | null = null;
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
    const override = (opts.env ?? process.env)['ADI_DAEMON_PLUGIN_SOCKET'];
    this.chosen = override !== undefined && override !== '';
    // The executor's facts (one passwd cache, one separation status), with what only services need.
    const facts = opts.executor.facts;
    this.servicePrivilege = {
      separation: () => facts.separation(),
      adiUser: facts.adiUser,
      adiRootUser: facts.adiRootUser,
      adiEntry: () => facts.adiEntry(),
      isRoot: facts.isRoot,
      selfUser: facts.selfUser,
      get sudo() {
        return facts.sudo;
      },
      get kill() {
        return facts.kill;
      },
      socketFor: (kind) => (kind === 'admin' ? paths.socket.display : this.pluginSocket),
      pluginToken: (plugin) => auth.pluginToken(plugin),
      auditPrivileged: ({ service, argv, result }) => {
        audit.record({
          identity: 'admin',
          action: 'privileged_service',
          argv,
          reason: `service ${service} (privileged = true)`,
          result,
          as: 'root',
        });
      },
    };
  }

  get active(): boolean {
    return this.opts.executor.separation.active;
  }

  /** The plugin socket's address while it listens, else null. */
  get pluginSocket(): string | null {
    return this.server !== null && this.place !== null ? this.place.endpoint.display : null;
  }

  /**
   * For Ping (`adi daemon status`, `adi daemon start`): whether plugin services can reach the daemon;
   * null when separation is off (there is no plugin socket then).
   */
  status(): PluginSocketStatus | null {
    if (!this.active) return null;
    if (this.server !== null && this.place !== null)
      return { state: 'listening', address: this.place.endpoint.display, error: this.place.note };
    const address = this.pluginEndpoint?.display ?? null;
    if (this.failure !== null) return { state: 'failed', address, error: this.failure };
    return { state: 'pending', address, error: null };
  }

  /** Check the system again, then open or close the plugin socket to match. */
  refresh(): Promise<void> {
    const before = this.active;
    const status = this.opts.executor.refreshSeparation();
    if (status.active !== before)
      this.opts.log.info(`privilege separation is now ${status.active ? 'active' : 'inactive'}: ${status.reason}`);
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
      // The admin socket and every service still work without it; plugin services cannot call the
      // daemon. That is reported where the admin looks (status()), not only here.
      const fail = (why: string): void => {
        this.failure = why;
        log.error(`plugin socket: ${why}; plugin services cannot reach the daemon`);
      };
      const endpoint = this.pluginEndpoint;
      if (endpoint === null) return fail(this.endpointError ?? 'no address');
      const entry = this.servicePrivilege.adiEntry();
      if (entry === null) return fail(`the plugin user ${this.opts.paths.adiUser} has no passwd entry`);
      let place: PluginSocketPlace = { endpoint, ownDir: null, note: null };
      try {
        if (!this.chosen) place = defaultPluginPlace(endpoint);
        const server = await bindPluginSocket({ endpoint: place.endpoint, gid: entry.gid, log });
        if (this.closed) {
          closePluginSocket(server, place.endpoint, place.ownDir);
          return;
        }
        server.on('connection', (socket) => this.opts.onPluginConnection(socket));
        this.server = server;
        this.place = place;
        this.failure = null;
        if (place.note !== null) log.warn(`plugin socket: ${place.note}`);
        log.info(`listening for plugin services on ${place.endpoint.display}`);
      } catch (err) {
        if (place.ownDir !== null) fs.rmSync(place.ownDir, { recursive: true, force: true });
        fail(describeBindError(place.endpoint, err));
      }
    } else if (!this.active) {
      this.failure = null;
      if (this.server !== null && this.place !== null) {
        closePluginSocket(this.server, this.place.endpoint, this.place.ownDir);
        this.server = null;
        this.place = null;
        log.info('privilege separation is off: no longer listening for plugin services');
      }
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
    if (this.server !== null && this.place !== null)
      closePluginSocket(this.server, this.place.endpoint, this.place.ownDir);
    this.server = null;
    this.place = null;
  }
}
