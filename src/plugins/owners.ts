// Who owns a service name, as far as the files say: the admin's services.toml or one installed
// plugin. Installing a plugin whose service name is taken is refused naming the owner, and
// `adi plugin list` shows the conflicts that exist anyway (a services.toml edited after an install).

import fs from 'node:fs';
import { parse } from 'smol-toml';
import type { Paths } from '../core/paths.js';
import { MAX_SERVICES_FILE_BYTES } from '../services/sources/file-source.js';
import { listInstalled } from './installed.js';
import type { PluginLocation } from './location.js';

/** The service names services.toml defines (its top-level tables), or none when it is absent or unreadable. */
export function servicesFileNames(paths: Paths): string[] {
  try {
    const st = fs.statSync(paths.servicesFile);
    if (!st.isFile() || st.size > MAX_SERVICES_FILE_BYTES) return [];
    return Object.keys(parse(fs.readFileSync(paths.servicesFile, 'utf8')));
  } catch {
    return [];
  }
}

/** service name -> its owners, each "services.toml (<path>)" or "plugin <name>". */
export function serviceOwners(paths: Paths, loc: PluginLocation): Map<string, string[]> {
  const owners = new Map<string, string[]>();
  const add = (service: string, owner: string): void => {
    const list = owners.get(service) ?? [];
    list.push(owner);
    owners.set(service, list);
  };
  for (const name of servicesFileNames(paths)) add(name, `services.toml (${paths.servicesFile})`);
  for (const p of listInstalled(loc, { resolve: (cmd) => cmd })) {
    const service = p.manifest?.service?.name;
    if (service !== undefined) add(service, `plugin ${p.name}`);
  }
  return owners;
}
