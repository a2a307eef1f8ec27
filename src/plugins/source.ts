// The daemon's second source of service definitions: every
// installed plugin whose manifest has a service. Its service is never privileged, never auto-started
// (on demand, when a plugin asks) and carries the plugin's name, the
// identity its token and its approvals are tied to. Read at start and on every reload, so installing
// or removing a plugin (which reloads the daemon) needs no restart.

import { formatFieldError, validateServiceConfig } from '../protocol/config-schema.js';
import { PLUGIN_RULES } from '../services/config.js';
import type { InvalidDefinition, ServiceDefinition, ServiceSource, SourceResult } from '../services/registry.js';
import type { Paths } from '../core/paths.js';
import { listInstalled } from './installed.js';
import { ensureRuntime, pluginsRoot, type LocationInputs } from './location.js';
import { serviceConfig } from './manifest.js';

export interface PluginSourceOptions extends LocationInputs {
  /** The node binary plugin services run with (default: the daemon's own). */
  node?: string;
}

export class PluginSource implements ServiceSource {
  readonly kind = 'plugin' as const;
  /**
   * plugin -> the service name its manifest gave at the last load that read it: when the manifest
   * breaks later, the name is still known, so its service keeps running and keeps its name (a
   * daemon started with the manifest already broken does not know it).
   */
  private readonly lastNames = new Map<string, string>();

  constructor(
    private readonly paths: Paths,
    private readonly options: PluginSourceOptions = {},
  ) {}

  async load(): Promise<SourceResult> {
    const loc = pluginsRoot(this.paths, this.options);
    // Patterns are checked for syntax only: a command uninstalled since does not hide the service
    // (SudoRun resolves and checks each call anyway).
    const plugins = listInstalled(loc, { resolve: (cmd) => cmd });
    const definitions: ServiceDefinition[] = [];
    const errors: string[] = [];
    const invalid: InvalidDefinition[] = [];
    const installed = new Set(plugins.map((p) => p.name));
    for (const name of [...this.lastNames.keys()]) if (!installed.has(name)) this.lastNames.delete(name);
    if (loc.shared && plugins.length > 0) {
      // After an upgrade of adi, plugins get the new client before their services next start.
      try {
        ensureRuntime(loc);
      } catch (err) {
        errors.push(
          `plugins: cannot refresh the adi-daemon runtime in ${loc.dir}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    for (const plugin of plugins) {
      const origin = `plugin ${plugin.name}`;
      if (plugin.manifest === null) {
        const error = `${origin}: ${plugin.error ?? 'invalid manifest'}`;
        errors.push(error);
        const last = this.lastNames.get(plugin.name);
        if (last !== undefined) invalid.push({ name: last, origin, errors: [error] });
        continue;
      }
      if (plugin.manifest.service === null) {
        this.lastNames.delete(plugin.name);
        continue;
      }
      const name = plugin.manifest.service.name;
      const result = validateServiceConfig(serviceConfig(plugin.manifest, plugin.dir, this.options.node), {
        plugin: PLUGIN_RULES,
      });
      if (result.config === null) {
        const bad = result.errors.map((e) => `${origin}: service "${name}": ${formatFieldError(e)}`);
        errors.push(...bad);
        invalid.push({ name, origin, errors: bad });
        // A renamed service whose new definition is invalid: the running one keeps its old name.
        const last = this.lastNames.get(plugin.name);
        if (last !== undefined && last !== name) invalid.push({ name: last, origin, errors: bad });
        continue;
      }
      this.lastNames.set(plugin.name, name);
      definitions.push({
        name,
        source: 'plugin',
        config: result.config,
        auto_start: false,
        origin,
        plugin: plugin.name,
      });
    }
    return { definitions, errors, invalid };
  }
}

/** The factory the daemon adds to its ServiceManager's sources. */
export function createPluginSource(paths: Paths, options: PluginSourceOptions = {}): PluginSource {
  return new PluginSource(paths, options);
}
