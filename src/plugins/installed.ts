// The plugins installed in a plugins folder: one folder per plugin, named after it, with its manifest.
// Read by the daemon's plugin source and by `adi plugin list`.

import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import { NAME_PATTERN } from '../core/paths.js';
import type { PluginLocation } from './location.js';
import { readManifest, type ManifestOptions, type PluginManifest } from './manifest.js';

export interface InstalledPlugin {
  /** The folder's name (the plugin's name when the manifest agrees). */
  name: string;
  dir: string;
  /** null when the manifest cannot be read or is invalid (see error). */
  manifest: PluginManifest | null;
  error: string | null;
}

/** Every plugin folder, sorted by name. Entries starting with '.' (the runtime, staging) are adi's own. */
export function listInstalled(loc: PluginLocation, options: ManifestOptions = {}): InstalledPlugin[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(loc.dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: InstalledPlugin[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || !NAME_PATTERN.test(entry.name)) continue;
    out.push(readInstalled(loc, entry.name, options));
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function readInstalled(loc: PluginLocation, name: string, options: ManifestOptions = {}): InstalledPlugin {
  const dir = path.join(loc.dir, name);
  try {
    const manifest = readManifest(dir, options);
    if (manifest.name !== name) {
      return {
        name,
        dir,
        manifest: null,
        error: `its package.json names it ${JSON.stringify(manifest.name)}, not ${JSON.stringify(name)}`,
      };
    }
    return { name, dir, manifest, error: null };
  } catch (err) {
    return {
      name,
      dir,
      manifest: null,
      error: err instanceof AdiError || err instanceof Error ? err.message : String(err),
    };
  }
}
