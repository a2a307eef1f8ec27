// The daemon's second source of service definitions: every
// installed plugin whose manifest has a service. Its service is never privileged, never auto-started
// (on demand, when a plugin asks) and carries the plugin's name, the
// identity its token and its approvals are tied to. Read at start and on every reload, so installing
// or removing a plugin (which reloads the daemon) needs no restart.

import { formatFieldError, validateServiceConfig } from '../protocol/config-schema.js';
import { PLUGIN_RULES } from '../services/config.js';
import type { ServiceDefinition, ServiceSource, SourceResult } from '../services/registry.js';
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
        errors.push(`${origin}: ${plugin.error ?? 'invalid manifest'}`);
        continue;
      }
      if (plugin.manifest.service === null) continue;
      const result = validateServiceConfig(serviceConfig(plugin.manifest, plugin.dir, this.options.node), {
        plugin: PLUGIN_RULES,
      });
      if (result.config === null) {
        for (const e of result.errors)
          errors.push(`${origin}: service "${plugin.manifest.service.name}": ${formatFieldError(e)}`);
        continue;
      }
      definitions.push({
        name: plugin.manifest.service.name,
        source: 'plugin',
        config: result.config,
        auto_start: false,
        origin,
        plugin: plugin.name,
      });
    }
    return { definitions, errors };
  }
}

/** The factory the daemon adds to its ServiceManager's sources. */
export function createPluginSource(paths: Paths, options: PluginSourceOptions = {}): PluginSource {
  return new PluginSource(paths, options);
}
