// What the service manager makes of a configuration: the rules a plugin's service is held to (an
// overlay on protocol/config-schema.ts, which validates and normalises every definition), and the key
// by which two normalised definitions are compared at reload.

import { DEFAULT_LOG_OPTIONS } from '../logs/service-log.js';
import type { NormalizedConfig, PluginRules } from '../protocol/config-schema.js';
import { PLUGIN_PIDS_DEFAULT } from '../system/rlimits.js';

/**
 * What a plugin's manifest may set. Its command is the plugin's subcommand and its args come after it
 * (the manifest gives both their meaning); it never chooses its environment, folder or root. Its logs
 * are no larger than the log module's defaults, and it always has a process limit (launch.ts).
 */
export const PLUGIN_RULES = {
  command: 'manifest',
  args: 'manifest',
  env: { refused: 'not supported for plugin services' },
  working_dir: { refused: 'a plugin service always runs in its plugin folder' },
  restart_on_failure: 'same',
  max_restarts: 'same',
  privileged: {
    refused: 'a plugin service never runs privileged; request specific commands with privileged_commands',
  },
  stop_timeout: 'same',
  ready_notify: 'same',
  readiness: 'same',
  liveness: 'same',
  log_max_bytes: { max: DEFAULT_LOG_OPTIONS.maxBytes, default: DEFAULT_LOG_OPTIONS.maxBytes },
  log_max_files: { max: DEFAULT_LOG_OPTIONS.maxFiles, default: DEFAULT_LOG_OPTIONS.maxFiles },
  pids_max: { max: 4096, default: PLUGIN_PIDS_DEFAULT },
  memory_max: 'same',
} as const satisfies PluginRules;

/** A stable text form of a normalised config: equal strings mean the same definition. */
export function configKey(config: NormalizedConfig): string {
  return JSON.stringify(sortKeys(config));
}

/**
 * Like configKey, but only what the process sees: log options are applied to a running service without
 * a restart (its output is written through whichever log is current).
 */
export function processKey(config: NormalizedConfig): string {
  return configKey({ ...config, log_max_bytes: null, log_max_files: null });
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}
