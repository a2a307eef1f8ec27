// Where service definitions come from: the user's services file and, from
// the plugins issue on, installed plugins. Each source is a small module with one `load()`; the registry
// asks them all and merges the answers. Ad-hoc services (StartService with a config) never pass through
// here: the manager keeps them.

import type { NormalizedConfig } from '../protocol/config-schema.js';

export type SourceKind = 'file' | 'plugin';

export interface ServiceDefinition {
  name: string;
  source: SourceKind | 'adhoc';
  /** Normalised (see validateServiceConfig). */
  config: NormalizedConfig;
  /** Start when the daemon starts. */
  auto_start: boolean;
  /** Where it was defined, for messages: the file path, "plugin <name>", or "StartService". */
  origin: string;
  /** The installed plugin that defines it (source 'plugin'): its identity for tokens and approvals. */
  plugin?: string;
}

export interface SourceResult {
  definitions: ServiceDefinition[];
  /** One line per problem, each naming the file (or plugin), the service and the field. */
  errors: string[];
  /**
   * The source could not be read at all (e.g. a TOML syntax error). On a reload the services it gave
   * before are then kept as they are: a typo in the file must not stop every service it defines.
   */
  failed?: boolean;
  /**
   * Names the source defines with an invalid definition: on a reload a service of that name keeps its
   * last valid definition (and keeps running) rather than being removed, and the name stays with it.
   */
  invalid?: InvalidDefinition[];
}

/** A name a source defines, but invalidly: who defines it (the origin) and what is wrong. */
export interface InvalidDefinition {
  name: string;
  origin: string;
  errors: string[];
}

export interface ServiceSource {
  readonly kind: SourceKind;
  load(): Promise<SourceResult>;
}

/** A name more than one source defines: who got it, and the definitions that were not loaded. */
export interface NameConflict {
  name: string;
  /** The origin whose definition is loaded, or null when none of them is (see loadSources). */
  owner: string | null;
  /** Origins whose definitions of the name were not loaded. */
  ignored: string[];
  /** One line for the admin: the name, who owns it, what was not loaded and what to do. */
  message: string;
}

/** The definition a running daemon holds for a name, when it loads the sources again. */
export interface CurrentOwner {
  origin: string;
  /** Index of the source it came from (null: ad-hoc). */
  sourceIndex: number | null;
}

export interface RegistrySnapshot {
  definitions: Map<string, ServiceDefinition>;
  errors: string[];
  /** Index (into the sources array) of the source each definition came from. */
  owners: Map<string, number>;
  /** Indexes of the sources that failed to load as a whole. */
  failedSources: Set<number>;
  /** Names defined invalidly (SourceResult.invalid), with their errors. */
  invalid: Map<string, string[]>;
  /** name -> the origins that define it invalidly: only its own origin's keeps a service as it was. */
  invalidOrigins: Map<string, Set<string>>;
  /** Names defined more than once, sorted by name (each definition not loaded is in one of them). */
  conflicts: NameConflict[];
}

interface Claim {
  def: ServiceDefinition;
  index: number;
}

/**
 * Ask every source and merge. A service name belongs to one source; when several define it:
 *
 * - the services file wins over every plugin: it is the admin's own, hand-written configuration;
 * - between plugins, the plugin that owned the name before (`current`: in the running daemon, or as
 *   recorded across restarts) keeps it, so that a plugin copied in by hand can neither take over nor
 *   stop another plugin's service; when none of them owned it, none is loaded. Never the first by
 *   name or by order: a plugin chooses its own name, and a name order would let it choose to win.
 * - a name whose current owner's source could not be read this time (a TOML syntax error), or whose
 *   current owner defines it invalidly this time, stays its.
 *
 * Every definition not loaded is reported as a NameConflict (not in `errors`: a conflict is not an
 * error in a definition, and is shown apart).
 */
export async function loadSources(
  sources: readonly ServiceSource[],
  current: (name: string) => CurrentOwner | undefined = () => undefined,
): Promise<RegistrySnapshot> {
  const errors: string[] = [];
  const failedSources = new Set<number>();
  const invalid = new Map<string, string[]>();
  const invalidOrigins = new Map<string, Set<string>>();
  const results = await Promise.all(
    sources.map(async (source): Promise<SourceResult> => {
      try {
        return await source.load();
      } catch (err) {
        // A source that throws is a bug or an I/O failure; it must not take the others down.
        return {
          definitions: [],
          errors: [`${source.kind} source: ${err instanceof Error ? err.message : String(err)}`],
          failed: true,
        };
      }
    }),
  );
  const claims = new Map<string, Claim[]>();
  results.forEach((result, index) => {
    errors.push(...result.errors);
    if (result.failed === true) failedSources.add(index);
    for (const bad of result.invalid ?? []) {
      invalid.set(bad.name, [...(invalid.get(bad.name) ?? []), ...bad.errors]);
      invalidOrigins.set(bad.name, (invalidOrigins.get(bad.name) ?? new Set()).add(bad.origin));
    }
    for (const def of result.definitions) {
      if (def.source === 'plugin' && def.config.privileged) {
        // Nothing a plugin sends or ships can make a service run as root.
        errors.push(
          `${def.origin}: service "${def.name}": field "privileged": a plugin's service can never be privileged (only the admin's services file may say privileged = true); this definition is ignored`,
        );
        continue;
      }
      const list = claims.get(def.name);
      if (list === undefined) claims.set(def.name, [{ def, index }]);
      else list.push({ def, index });
    }
  });

  const definitions = new Map<string, ServiceDefinition>();
  const owners = new Map<string, number>();
  const conflicts: NameConflict[] = [];
  for (const [name, list] of claims) {
    const held = current(name);
    const kept = heldBack(name, held, failedSources, invalidOrigins);
    if (held !== undefined && kept !== null) {
      // The manager keeps the owner's service as it was: a typo in the services file, or a plugin's
      // broken manifest, must not hand the name to another source.
      conflicts.push(
        describeConflict(
          name,
          held.origin,
          list.map((c) => c.def.origin),
          kept,
        ),
      );
      continue;
    }
    let winner = list[0] ?? null;
    if (list.length > 1) {
      winner = pickOwner(list, held);
      const why =
        winner === null
          ? 'a name belongs to one plugin, and none of them owned it before (uninstall all but one, then adi daemon reload)'
          : winner.def.source === 'file'
            ? 'the services file comes before plugins (rename or remove the other, then adi daemon reload)'
            : `${winner.def.origin} owned it first (uninstall or rename the other, then adi daemon reload)`;
      conflicts.push(
        describeConflict(
          name,
          winner?.def.origin ?? null,
          list.filter((c) => c !== winner).map((c) => c.def.origin),
          why,
        ),
      );
    }
    if (winner === null) continue;
    definitions.set(name, winner.def);
    owners.set(name, winner.index);
  }
  conflicts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { definitions, errors, owners, failedSources, conflicts, invalid, invalidOrigins };
}

/**
 * Why `name` stays with its current owner as it was, definition and all, or null when it does not:
 * the owner's source could not be read this time, or the owner itself now defines it invalidly.
 */
export function heldBack(
  name: string,
  held: CurrentOwner | undefined,
  failedSources: ReadonlySet<number>,
  invalidOrigins: ReadonlyMap<string, ReadonlySet<string>>,
): string | null {
  if (held === undefined) return null;
  if (held.sourceIndex !== null && failedSources.has(held.sourceIndex))
    return `${held.origin} could not be read this time, and the name stays with it`;
  if (invalidOrigins.get(name)?.has(held.origin) === true)
    return `the new definition in ${held.origin} is invalid, and the name stays with it (fix or remove it, then adi daemon reload)`;
  return null;
}

function pickOwner(list: readonly Claim[], held: CurrentOwner | undefined): Claim | null {
  const file = list.find((c) => c.def.source === 'file');
  if (file !== undefined) return file;
  return list.find((c) => held !== undefined && c.def.origin === held.origin) ?? null;
}

/** A NameConflict with its message; `why` says how the owner was chosen and what the admin can do. */
export function describeConflict(name: string, owner: string | null, ignored: string[], why: string): NameConflict {
  const who = ignored.join(' and ');
  const message =
    owner === null
      ? `service "${name}": defined by ${who}, and none of these definitions is loaded: ${why}`
      : `service "${name}" belongs to ${owner}; the definition${ignored.length > 1 ? 's' : ''} in ${who} ${ignored.length > 1 ? 'are' : 'is'} not loaded: ${why}`;
  return { name, owner, ignored, message };
}
