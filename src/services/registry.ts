// Where service definitions come from (the seed's ServiceRegistry): the user's services file and, from
// the plugins issue on, installed plugins. Each source is a small module with one `load()`; the registry
// asks them all and merges the answers. Ad-hoc services (StartService with a config) never pass through
// here: the manager keeps them.

import { configKey, type NormalizedConfig } from './config.js';

export type SourceKind = 'file' | 'plugin';

export interface ServiceDefinition {
  name: string;
  source: SourceKind | 'adhoc';
  /** Normalised (see validateServiceConfig). */
  config: NormalizedConfig;
  /** Start when the daemon starts (the seed's DaemonConfig.auto_start). */
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
   * Names the source defines with an invalid definition, with their errors: on a reload a service of
   * that name keeps its last valid definition (and keeps running) rather than being removed.
   */
  invalid?: Map<string, string[]>;
}

export interface ServiceSource {
  readonly kind: SourceKind;
  load(): Promise<SourceResult>;
}

/** Two definitions are the same when everything that affects how the service runs is equal. */
export function definitionKey(def: ServiceDefinition): string {
  return `${def.source}\n${def.auto_start ? 1 : 0}\n${configKey(def.config)}`;
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
}

/**
 * Ask every source, in order, and merge. On a name defined twice, the first source wins (the services
 * file comes first, so a user can override a plugin's definition) and the other is reported.
 */
export async function loadSources(sources: readonly ServiceSource[]): Promise<RegistrySnapshot> {
  const definitions = new Map<string, ServiceDefinition>();
  const errors: string[] = [];
  const failedSources = new Set<number>();
  const owners = new Map<string, number>();
  const invalid = new Map<string, string[]>();
  const results = await Promise.all(
    sources.map(async (source): Promise<SourceResult> => {
      try {
        return await source.load();
      } catch (err) {
        // A source that throws is a bug or an I/O failure; it must not take the others down.
        return { definitions: [], errors: [`${source.kind} source: ${err instanceof Error ? err.message : String(err)}`], failed: true };
      }
    }),
  );
  results.forEach((result, index) => {
    errors.push(...result.errors);
    if (result.failed === true) failedSources.add(index);
    for (const [name, why] of result.invalid ?? []) invalid.set(name, [...(invalid.get(name) ?? []), ...why]);
    for (const def of result.definitions) {
      if (def.source === 'plugin' && def.config.privileged) {
        // Issue 4: nothing a plugin sends or ships can make a service run as root.
        errors.push(`${def.origin}: service "${def.name}": field "privileged": a plugin's service can never be privileged (only the admin's services file may say privileged = true); this definition is ignored`);
        continue;
      }
      const existing = definitions.get(def.name);
      if (existing !== undefined) {
        errors.push(`${def.origin}: service "${def.name}": already defined by ${existing.origin}; this definition is ignored`);
        continue;
      }
      definitions.set(def.name, def);
      owners.set(def.name, index);
    }
  });
  return { definitions, errors, owners, failedSources, invalid };
}
