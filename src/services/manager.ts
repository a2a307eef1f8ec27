// The service manager: holds every known service (from the services file, plugins, or ad-hoc
// StartService requests) and is what the request handlers call. Per-service behaviour lives in
// service.ts; where definitions come from in registry.ts and sources/; this file is the bookkeeping
// between them: lookups, reload, auto_start, shutdown and the state file.

import fs from 'node:fs';
import os from 'node:os';
import { AdiError } from '../core/errors.js';
import { checkName, type Paths } from '../core/paths.js';
import type { ServiceInfo } from '../protocol/types.js';
import type { Logger } from '../core/logger.js';
import type { ServiceLog } from '../logs/service-log.js';
import type { NormalizedConfig } from '../protocol/config-schema.js';
import { configKey } from './config.js';
import { daemonInstance, pluginOf } from './launch.js';
import { ProcScanner, scanProcessesSync, terminate } from '../system/process-group.js';
import { Recovery } from './recovery.js';
import {
  describeConflict,
  heldBack,
  loadSources,
  type CurrentOwner,
  type NameConflict,
  type ServiceDefinition,
  type ServiceSource,
} from './registry.js';
import { ResourceSampler } from '../system/resources.js';
import type { ServicePrivilege } from '../system/run-as.js';
import type { Clock } from './runtime.js';
import { Service, type ServiceHost } from './service.js';
import { FileSource } from './sources/file-source.js';
import { OwnerRecord } from './sources/owners.js';
import { StateRecorder, type StateEntry, type WantedService } from './state-file.js';

export type { NameConflict, ServiceDefinition, ServiceSource } from './registry.js';

/** No process has a negative pgid: a target with it is found by its marker only. */
const NO_GROUP = -1;

export interface ServiceManagerOptions {
  paths: Paths;
  log: Logger;
  /** Extra service definition sources besides the services file (the plugins issue adds one). */
  sources?: ServiceSource[];
  /** Base environment for children (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** cwd of services without a working_dir (default: the user's home directory). */
  home?: string;
  /** Who services run as when privilege separation is active (run-as.ts); absent: the daemon's user. */
  privilege?: ServicePrivilege;
  /** Why a new run may not start now (the daemon's descriptor reserve, fd-budget.ts), or null. */
  spawnRefusal?: () => string | null;
  /** What services time their restarts and stops with; absent: the real clock. */
  clock?: Clock;
}

/**
 * ServiceInfo.plugin and .conflicts, set only when there is something to say: absent fields keep a
 * 1,000-service listing as small as before.
 */
function withOwner(info: ServiceInfo, def: ServiceDefinition, conflicts: ReadonlyMap<string, string[]>): ServiceInfo {
  const plugin = pluginOf(def, def.name);
  if (plugin !== null) info.plugin = plugin;
  const lines = conflicts.get(def.name);
  if (lines !== undefined) info.conflicts = lines;
  return info;
}

export interface ReloadResult {
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  /** Services whose new definition is invalid (or whose source could not be read): they keep their last valid one. */
  kept: string[];
  errors: string[];
  /** Service names several sources define (the definitions not loaded): shown, but not errors in a definition. */
  conflicts: string[];
}

/** At most this many configuration errors are kept for status and listings (a broken 4 MiB file has thousands). */
const MAX_CONFIG_ERRORS = 50;

export class ServiceManager {
  private readonly paths: Paths;
  private readonly log: Logger;
  private readonly sources: ServiceSource[];
  private readonly services = new Map<string, Service>();
  /** Removed by a reload but still stopping: kept in the state file until nothing of them is left. */
  private readonly retiring = new Set<Service>();
  private readonly host: ServiceHost;
  private closed = false;
  /** The definition sources' errors at the last load (init or reload), for status and listings. */
  private sourceErrors: string[] = [];
  /** Names the sources define invalidly, with their errors, at the last load. */
  private invalidDefinitions = new Map<string, string[]>();
  /** The state file (crash recovery): the runs of services and of recovery, and the wanted names. */
  private readonly state: StateRecorder<Service | Recovery>;
  /** Reloads run one at a time. */
  private reloading: Promise<unknown> = Promise.resolve();
  /** What the previous daemon left (crash recovery); its entries stay in the state file until gone. */
  private recovery: Recovery = Recovery.none();
  /** Services the previous daemon ran, until their start here has been tried (still wanted meanwhile). */
  private readonly restoring = new Map<string, WantedService>();
  /**
   * Set while init() loads the definitions: the daemon answers before that is done, and a request for a
   * service by name must wait for the definitions rather than get SERVICE_NOT_FOUND.
   */
  private loading: Promise<void> | null = null;
  private loaded: (() => void) | null = null;
  /** CPU and memory per service, sampled when the services are listed (never on a timer). */
  private readonly resources = new ResourceSampler();
  /** Names defined more than once, as of the last load: shown by ListServices and Ping, not only logged. */
  private nameConflicts: NameConflict[] = [];
  /** Which plugin owned each name, across restarts: between plugins, the owner keeps a contested name. */
  private readonly ownerRecord: OwnerRecord;
  /** Every run carries it (ADI_DAEMON_INSTANCE): recovery and the last sweep of a shutdown find runs by it. */
  private readonly instance: string;
  private readonly spawnRefusal: (() => string | null) | undefined;

  constructor(opts: ServiceManagerOptions) {
    this.paths = opts.paths;
    this.log = opts.log;
    this.sources = [new FileSource(opts.paths.servicesFile), ...(opts.sources ?? [])];
    this.state = new StateRecorder<Service | Recovery>(
      opts.paths.stateFile,
      {
        owners: () => [...this.services.values(), ...this.retiring, this.recovery],
        names: () => [...[...this.services.values(), ...this.retiring].map((s) => s.name), ...this.restoring.keys()],
        runsOf: (owner) => (owner instanceof Recovery ? owner.pending() : this.runsOf(owner)),
        wanted: (name) => this.wantedRecord(name),
      },
      opts.log,
    );
    this.ownerRecord = new OwnerRecord(opts.paths.dataDir, opts.log);
    this.instance = daemonInstance(opts.paths.dataDir);
    this.spawnRefusal = opts.spawnRefusal;
    this.host = {
      instance: this.instance,
      ...(opts.spawnRefusal !== undefined ? { spawnRefusal: opts.spawnRefusal } : {}),
      log: opts.log,
      logsDir: opts.paths.logsDir,
      baseEnv: opts.env ?? process.env,
      home: opts.home ?? os.homedir(),
      scanner: new ProcScanner(),
      ...(opts.privilege !== undefined ? { privilege: opts.privilege } : {}),
      ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
      runsChanged: () => this.state.schedule(),
      accepting: () => !this.closed,
    };
  }

  /**
   * Recover from an unclean exit of the previous daemon (recovery.ts: its leftover processes are
   * ended first), load the definitions, and start the auto_start services plus every service the
   * previous daemon was running when it died (in parallel; failures are logged).
   */
  async init(): Promise<void> {
    this.holdRequestsUntilLoaded();
    try {
      fs.mkdirSync(this.paths.logsDir, { recursive: true, mode: 0o700 });
      // Before anything is loaded or started: the SIGTERMs to the previous daemon's processes go out now.
      this.recovery = Recovery.begin({
        stateFile: this.paths.stateFile,
        log: this.log,
        scanner: this.host.scanner,
        instance: this.instance,
        settled: () => this.state.changed(this.recovery),
      });
      for (const w of this.recovery.wanted.values()) this.restoring.set(w.name, w);
      await this.loadInitial();
      // Services and the restored names are all known now: the next write records every one of them.
      this.state.everything();
    } finally {
      this.loaded?.();
    }
    await this.startInitial();
  }

  /**
   * From now until init() has loaded the definitions, requests by name wait for them. The daemon calls
   * this before it accepts connections; init() calls it too (a no-op when already held).
   */
  holdRequestsUntilLoaded(): void {
    if (this.loading !== null) return;
    this.loading = new Promise<void>((resolve) => {
      this.loaded = () => {
        this.loaded = null;
        resolve();
      };
    });
  }

  /** init(), part one: the definitions, and the ad-hoc services a crash interrupted. */
  private async loadInitial(): Promise<void> {
    this.ownerRecord.load();
    const snapshot = await loadSources(this.sources, (name): CurrentOwner | undefined => {
      const origin = this.ownerRecord.owner(name);
      return origin === undefined ? undefined : { origin, sourceIndex: null };
    });
    this.nameConflicts = snapshot.conflicts;
    this.noteSourceErrors(snapshot.errors, snapshot.invalid);
    for (const error of [...snapshot.errors, ...this.conflicts()]) this.log.warn(`services: ${error}`);
    for (const [name, def] of snapshot.definitions) {
      if (this.services.has(name)) continue;
      this.services.set(name, this.createService(def, snapshot.owners.get(name) ?? null));
    }
    for (const w of this.restoring.values()) {
      if (w.source !== 'adhoc' || w.config === undefined) continue;
      const existing = this.services.get(w.name);
      if (existing !== undefined) {
        this.log.warn(
          `recovery: the ad-hoc service ${w.name} ran when the previous daemon died, but ${existing.def.origin} now defines that name; the ad-hoc one is not started again`,
        );
        this.restoring.delete(w.name);
        continue;
      }
      this.services.set(
        w.name,
        this.createService(
          { name: w.name, source: 'adhoc', config: w.config, auto_start: false, origin: 'StartService' },
          null,
        ),
      );
    }
    for (const name of this.restoring.keys()) {
      if (!this.services.has(name)) {
        this.log.warn(
          `recovery: service ${name} ran when the previous daemon died but is no longer defined; not started again`,
        );
        this.restoring.delete(name);
      }
    }
    for (const name of this.recovery.names()) {
      const termination = this.recovery.termination(name);
      if (termination !== undefined) this.services.get(name)?.awaitPrevious(termination);
    }
    this.recordOwners();
  }

  /** init(), part two: start auto_start services and those the previous daemon ran when it died. */
  private async startInitial(): Promise<void> {
    const starting = [...this.services.values()].filter((s) => s.def.auto_start || this.restoring.has(s.name));
    const auto = starting.filter((s) => s.def.auto_start).length;
    await Promise.all(
      starting.map((s) =>
        this.autoStart(s).finally(() => {
          this.restoring.delete(s.name);
          this.state.nameChanged(s.name);
        }),
      ),
    );
    this.log.info(
      `services: ${this.services.size} defined, ${auto} auto-started${starting.length > auto ? `, ${starting.length - auto} restored after a crash` : ''}`,
    );
  }

  /**
   * Start a service: by name from a source, or ad-hoc with `config`. Resolves once the process is
   * spawned (its state may still be `starting` while readiness is pending).
   */
  async start(name: string, config?: NormalizedConfig | null): Promise<ServiceInfo> {
    this.checkOpen();
    await this.loading;
    if (config === undefined || config === null) return this.require(name).start();

    checkName('service', name);
    // Validated and normalised where it came in (parseRequest, for a StartService): the type says so.
    const def: ServiceDefinition = {
      name,
      source: 'adhoc',
      config,
      auto_start: false,
      origin: 'StartService',
    };
    const existing = this.services.get(name);
    if (existing === undefined) {
      const contested = this.nameConflicts.find((c) => c.name === name);
      if (contested !== undefined) {
        throw new AdiError(
          'SERVICE_EXISTS',
          `The name "${name}" is claimed by ${contested.ignored.join(' and ')} (${contested.message}); choose another name.`,
        );
      }
      // Refused before the service exists: a refused ad-hoc service would still hold its log open.
      const refusal = this.spawnRefusal?.() ?? null;
      if (refusal !== null) throw new AdiError('SPAWN_FAILED', `Service "${name}" cannot start: ${refusal}.`);
      const service = this.createService(def, null);
      this.services.set(name, service);
      return service.start();
    }
    if (existing.def.source !== 'adhoc') {
      throw new AdiError(
        'SERVICE_EXISTS',
        `Service "${name}" is defined in ${existing.def.origin}; start it by name without a command, or choose another name.`,
      );
    }
    const same = configKey(existing.def.config) === configKey(def.config);
    if (existing.isActive()) {
      if (same) return existing.start();
      throw new AdiError(
        'SERVICE_EXISTS',
        `An ad-hoc service "${name}" is already running with another definition; stop it first (adi daemon stop ${name}).`,
      );
    }
    // A stopped or failed ad-hoc service is replaced by the new definition.
    if (!same) await existing.redefine(def, null);
    return existing.start();
  }

  /** Stop a service; resolves once no process of it remains. */
  async stop(name: string, force: boolean): Promise<ServiceInfo> {
    await this.loading;
    return this.require(name).stop(force);
  }

  /** Stop (gracefully) and start again; a user restart resets the restart count. */
  async restart(name: string): Promise<ServiceInfo> {
    this.checkOpen();
    await this.loading;
    return this.require(name).restart();
  }

  list(): ServiceInfo[] {
    const now = Date.now();
    const all = [...this.services.values()];
    const usage = this.resources.sample(
      all.map((s) => ({ name: s.name, runs: s.stateEntries() })),
      now,
    );
    // info() returns a new object: the usage goes into it rather than into a copy (1,000 services per listing).
    const conflicts = this.conflictsByName();
    return all
      .map((s) => withOwner(Object.assign(s.info(now), usage.get(s.name)), s.def, conflicts))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): ServiceInfo | undefined {
    const s = this.services.get(name);
    if (s === undefined) return undefined;
    const now = Date.now();
    return withOwner(
      { ...s.info(now), ...this.resources.sample([{ name, runs: s.stateEntries() }], now, false).get(name) },
      s.def,
      this.conflictsByName(),
    );
  }

  /** Every name conflict of the last load, one line each for the admin (sorted by name). */
  conflicts(): string[] {
    return this.nameConflicts.map((c) => c.message);
  }

  private recordOwners(): void {
    this.ownerRecord.update([...this.services.values()].map((s) => s.def));
  }

  private conflictsByName(): Map<string, string[]> {
    const byName = new Map<string, string[]>();
    for (const c of this.nameConflicts) byName.set(c.name, [...(byName.get(c.name) ?? []), c.message]);
    return byName;
  }

  /** Definitions as loaded (for `adi daemon services` details and the plugins issue). */
  definition(name: string): ServiceDefinition | undefined {
    return this.services.get(name)?.def;
  }

  /**
   * Re-read the sources. Unchanged services are not touched (same pid); changed ones that run are
   * restarted with the new definition; removed ones are stopped and forgotten; new auto_start ones are
   * started. Ad-hoc services are kept. A source that fails as a whole (a TOML syntax error) keeps
   * the services it defined before as they are.
   */
  async reload(): Promise<ReloadResult> {
    this.checkOpen();
    const next = this.reloading.then(() => this.doReload());
    this.reloading = next.catch(() => undefined);
    return next;
  }

  private async doReload(): Promise<ReloadResult> {
    // Who holds each name now: between plugins, the current owner keeps a contested name (registry.ts).
    const snapshot = await loadSources(this.sources, (name): CurrentOwner | undefined => {
      const s = this.services.get(name);
      return s === undefined ? undefined : { origin: s.def.origin, sourceIndex: s.sourceIndex };
    });
    this.noteSourceErrors(snapshot.errors, snapshot.invalid);
    const conflicts = [...snapshot.conflicts];
    const result: ReloadResult = {
      added: [],
      removed: [],
      changed: [],
      unchanged: [],
      kept: [],
      errors: [...snapshot.errors],
      conflicts: [],
    };
    const work: Promise<unknown>[] = [];

    for (const [name, service] of this.services) {
      if (service.def.source === 'adhoc' || snapshot.definitions.has(name)) continue;
      // A typo must not stop a running service: an unreadable source, or an invalid new definition,
      // leaves the service with its last valid definition.
      const owner = { origin: service.def.origin, sourceIndex: service.sourceIndex };
      if (heldBack(name, owner, snapshot.failedSources, snapshot.invalidOrigins) !== null) {
        result.kept.push(name);
        continue;
      }
      result.removed.push(name);
      this.services.delete(name);
      this.retiring.add(service);
      this.serviceChanged(service);
      work.push(
        service
          .remove()
          .catch((err: unknown) =>
            this.log.warn(`services: removing ${name}: ${err instanceof Error ? err.message : String(err)}`),
          )
          .finally(() => {
            this.retiring.delete(service);
            this.serviceChanged(service);
          }),
      );
    }

    for (const [name, def] of snapshot.definitions) {
      const owner = snapshot.owners.get(name) ?? null;
      const existing = this.services.get(name);
      if (existing === undefined) {
        const service = this.createService(def, owner);
        this.services.set(name, service);
        result.added.push(name);
        if (def.auto_start) work.push(this.autoStart(service));
        continue;
      }
      if (existing.def.source === 'adhoc') {
        if (existing.isActive()) {
          conflicts.push(
            describeConflict(name, 'the running ad-hoc service', [def.origin], 'stop it, then adi daemon reload'),
          );
          continue;
        }
        existing.close();
        const service = this.createService(def, owner);
        this.services.set(name, service);
        this.serviceChanged(existing);
        result.changed.push(name);
        continue;
      }
      const sameConfig = configKey(existing.def.config) === configKey(def.config);
      if (sameConfig && existing.def.auto_start === def.auto_start && existing.def.source === def.source) {
        existing.sourceIndex = owner;
        result.unchanged.push(name);
        continue;
      }
      result.changed.push(name);
      work.push(
        existing.redefine(def, owner).catch((err: unknown) => {
          this.log.warn(
            `services: restarting ${name} with its new definition: ${err instanceof Error ? err.message : String(err)}`,
          );
        }),
      );
    }

    await Promise.all(work);
    conflicts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.nameConflicts = conflicts;
    this.recordOwners();
    result.conflicts = this.conflicts();
    for (const error of [...result.errors, ...result.conflicts]) this.log.warn(`services: ${error}`);
    if (result.kept.length > 0)
      this.log.warn(
        `services: kept the last valid definition of ${result.kept.join(', ')} (the new one is invalid or unreadable)`,
      );
    this.log.info(
      `services reloaded: ${result.added.length} added, ${result.removed.length} removed, ${result.changed.length} changed, ${result.unchanged.length} unchanged, ${result.kept.length} kept, ${result.errors.length} errors`,
    );
    for (const list of [result.added, result.removed, result.changed, result.unchanged, result.kept]) list.sort();
    return result;
  }

  async tail(name: string, lines: number): Promise<string[]> {
    await this.loading;
    return this.require(name).log.tail(lines);
  }

  /** A service's log, for its readers (tails, follows, cursors). */
  async logOf(name: string): Promise<ServiceLog> {
    await this.loading;
    return this.require(name).log;
  }

  /** Calls `listener` with each new log line; returns the unsubscribe function. */
  follow(name: string, listener: (line: string) => void): () => void {
    return this.require(name).log.follow(listener);
  }

  /**
   * Daemon shutdown: stop every service in parallel, each bounded by its stop_timeout (then SIGKILL).
   * The manager accepts nothing afterwards.
   */
  async stopAll(): Promise<void> {
    this.closed = true;
    const services = [...this.services.values()];
    await Promise.all(
      services.map((s) =>
        s.stop(false).catch((err: unknown) => {
          this.log.warn(`services: stopping ${s.name}: ${err instanceof Error ? err.message : String(err)}`);
        }),
      ),
    );
    // Leftovers of the previous daemon whose service is no longer defined end on their own schedule.
    await this.recovery.done;
    await this.sweepMarked();
    for (const s of services) s.close();
    // A whole snapshot: what a clean stop leaves is one small file with both lists empty.
    this.state.everything();
    this.state.write(true);
    // Final: nothing runs any more, and a late callback must not recreate a directory being removed.
    this.state.close();
    this.resources.close();
  }

  /**
   * The last check of a shutdown: no process carrying this data dir's ADI_DAEMON_INSTANCE may outlive it.
   * Normally none is left; one is if an earlier daemon died while its spawn was between fork and
   * exec (its environment was not the service's yet when recovery scanned), or if a service cleared
   * its run marker but kept the rest of its environment. They are ended like a stop, without grace.
   */
  private async sweepMarked(): Promise<void> {
    const left = scanProcessesSync().filter((p) => p.state !== 'Z' && p.instance === this.instance);
    if (left.length === 0) return;
    this.log.warn(
      `shutdown: ${left.length} process(es) of this data dir outlived their service (pids ${left.map((p) => p.pid).join(', ')}); killing them`,
    );
    const targets = left.map((p) => ({ pgid: NO_GROUP, marker: p.marker ?? '' }));
    // Also by pid: a process whose marker was cleared is found only as itself.
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    const result = await terminate(
      targets.filter((t) => t.marker !== ''),
      { graceMs: 0, force: true, scanner: this.host.scanner },
    ).done;
    if (result.remaining.length > 0)
      this.log.warn(`shutdown: processes ${result.remaining.join(', ')} survived SIGKILL (uninterruptible?)`);
  }

  private async autoStart(service: Service): Promise<void> {
    try {
      await service.start();
    } catch (err) {
      this.log.warn(`services: auto_start ${service.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Resolves once init() has loaded the definitions (at once afterwards). */
  async whenLoaded(): Promise<void> {
    await this.loading;
  }

  /** The definition sources' errors as of the last load (init or reload): file, service, field, hint. */
  configErrors(): string[] {
    return this.sourceErrors;
  }

  /** The errors of a name's definition when the last load found it invalid (empty otherwise). */
  definitionErrors(name: string): string[] {
    return this.invalidDefinitions.get(name) ?? [];
  }

  /** What is degraded now (the state file cannot be written), for status and listings. */
  problems(): string[] {
    const error = this.state.problem;
    return error === null
      ? []
      : [
          `crash-recovery state ${this.paths.stateFile} cannot be written: ${error} (services run; after a crash of the daemon they are found by their marker instead)`,
        ];
  }

  private noteSourceErrors(errors: readonly string[], invalid: ReadonlyMap<string, string[]>): void {
    this.sourceErrors =
      errors.length <= MAX_CONFIG_ERRORS
        ? [...errors]
        : [
            ...errors.slice(0, MAX_CONFIG_ERRORS - 1),
            `… and ${errors.length - MAX_CONFIG_ERRORS + 1} more errors (see the daemon log)`,
          ];
    this.invalidDefinitions = new Map(invalid);
  }

  private require(name: string): Service {
    const service = typeof name === 'string' ? this.services.get(name) : undefined;
    const invalid = service === undefined && typeof name === 'string' ? this.invalidDefinitions.get(name) : undefined;
    if (invalid !== undefined) {
      throw new AdiError(
        'BAD_CONFIG',
        `Service "${name}" is not loaded: its definition is invalid: ${invalid.join('; ')}. Fix it, then run \`adi daemon reload\`.`,
      );
    }
    if (service === undefined) {
      throw new AdiError(
        'SERVICE_NOT_FOUND',
        `No service named ${JSON.stringify(name)}. See \`adi daemon services\` for the known ones, or define it in ${this.paths.servicesFile}.`,
      );
    }
    return service;
  }

  private checkOpen(): void {
    if (this.closed)
      throw new AdiError('SHUTTING_DOWN', 'The daemon is shutting down; services can no longer be started.');
  }

  /**
   * A Service that reports its changes as its own (host.runsChanged), so that a state write looks at
   * the services that changed, not at all of them.
   */
  private createService(def: ServiceDefinition, sourceIndex: number | null): Service {
    const host: ServiceHost = { ...this.host, runsChanged: () => this.serviceChanged(service) };
    const service = new Service(def, sourceIndex, host);
    return service;
  }

  private serviceChanged(service: Service): void {
    this.state.changed(service, service.name);
  }

  /**
   * A service's runs for the state file. One removed by a reload is recorded until it has stopped
   * (retiring); one replaced or forgotten has no runs left to record.
   */
  private runsOf(s: Service): StateEntry[] {
    const tracked = this.services.get(s.name) === s || this.retiring.has(s);
    return tracked ? s.stateEntries().map((e) => ({ ...e, stop_timeout: s.def.config.stop_timeout })) : [];
  }

  /** The `wanted` record of a name, or null when no service of that name should be running. */
  private wantedRecord(name: string): WantedService | null {
    const s = this.services.get(name);
    if (s === undefined || (!s.wanted() && !this.restoring.has(name))) return null;
    // An ad-hoc definition exists nowhere else: it is recorded whole.
    return s.def.source === 'adhoc' ? { name, source: 'adhoc', config: s.def.config } : { name, source: s.def.source };
  }
}
