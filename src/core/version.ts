// The package's version and root folder, read once from its package.json. Works both from the compiled
// tree (dist/src/...) and from the bundled CLI (dist/adi.mjs): walk up until the package is found.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: { root: string; version: string } | null = null;

function find(): { root: string; version: string } {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    try {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'adi-daemon' && typeof pkg.version === 'string') {
        cached = { root: dir, version: pkg.version };
        return cached;
      }
    } catch {
      // not here; keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('adi-daemon: cannot find its own package.json');
    dir = parent;
  }
}

export function packageVersion(): string {
  return find().version;
}

export function packageRoot(): string {
  return find().root;
}

/** The `adi` executable script, used to start the daemon in the background. */
export function cliEntry(): string {
  return path.join(packageRoot(), 'bin', 'adi.js');
}
