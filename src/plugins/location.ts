// Where installed plugins live, and the file layout that lets the plugin user run them.
// The whole rule is pluginsRoot(); everything that reads or writes plugins asks it.
//
//   embedded (no separation)   <data dir>/plugins/<name>/            plugins run as the admin, who can
//                               node_modules/adi-daemon -> packageRoot()    read everything anyway
//
//   separated (ADI_USER set up) /var/lib/adi-daemon/plugins/<ADI_USER>/<name>/
//                               node_modules/adi-daemon -> ../../.runtime/adi-daemon (a copy)
//
// Why not the data dir when separated: plugin services run as ADI_USER, which must read and run the
// plugin's files and the adi-daemon package it imports, and the admin's home is often 0700 (and the
// data dir, holding tokens and approvals, always is). Opening either would expose the admin's files, so
// plugins live outside the home: in a directory `adi daemon setup` creates (it is root's to create)
// and gives to the admin, mode 0755, files 0644 (0755 when executable). The plugin user can read and
// run them but change nothing; approvals and tokens stay in the admin's private data dir.
//
// The adi-daemon package a plugin imports is copied (package.json, dist/src and its runtime
// dependencies) to `<root>/.runtime/adi-daemon`, because the running adi's own folder may be anywhere
// (a home, a 0700 checkout). Names starting with '.' are never plugin names (see NAME_PATTERN), so
// `.runtime` and the staging folders cannot collide with a plugin.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import { separationStatus, sharedPluginsDir } from '../system/privilege.js';
import { checkName, type Paths } from '../core/paths.js';
import { packageRoot, packageVersion } from '../core/version.js';

export interface PluginLocation {
  /** Installed plugins, one folder each: `<dir>/<name>/`. */
  dir: string;
  /**
   * Plugin services run as ADI_USER (separation is active): files must be readable by others and
   * `adi-daemon` is a copy inside `dir`.
   */
  shared: boolean;
  /** Why this location, for messages. */
  reason: string;
}

export interface LocationInputs {
  /** Whether separation is active; default separationStatus(paths). */
  separation?: () => boolean;
  /** setup's state dir (default /var/lib/adi-daemon). */
  stateDir?: string;
}

/** The one rule: where plugins live for these paths (see the top of this file). */
export function pluginsRoot(paths: Paths, inputs: LocationInputs = {}): PluginLocation {
  const active = inputs.separation !== undefined ? inputs.separation() : separationStatus(paths).active;
  if (!active) {
    return {
      dir: paths.pluginsDir,
      shared: false,
      reason: "privilege separation is not set up: plugins run as the daemon's user",
    };
  }
  return {
    dir: sharedPluginsDir(paths.adiUser, inputs.stateDir),
    shared: true,
    reason: `plugins run as ${paths.adiUser}, so they live outside the admin's home`,
  };
}

export function pluginDir(loc: PluginLocation, name: string): string {
  return path.join(loc.dir, checkName('plugin', name));
}

/** The copy of adi-daemon plugins import when `shared`. */
export function runtimeDir(loc: PluginLocation): string {
  return path.join(loc.dir, '.runtime', 'adi-daemon');
}

/** Mode of directories and files plugins are installed with when shared. */
export const SHARED_DIR_MODE = 0o755;

/**
 * Make sure the plugins folder exists and is safe to install into: when shared, it must be ours and
 * writable by no one else (whoever could write it could change the code the plugin user runs).
 * Only root can create it under /var/lib; anyone else is told to run setup.
 */
export function ensurePluginsRoot(loc: PluginLocation): void {
  if (!loc.shared) {
    fs.mkdirSync(loc.dir, { recursive: true, mode: 0o700 });
    return;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(loc.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (process.getuid?.() !== 0) {
      throw new AdiError(
        'PERMISSION_DENIED',
        `The plugins folder ${loc.dir} does not exist; \`sudo adi daemon setup\` creates it for the admin. Run it again, then install.`,
      );
    }
    fs.mkdirSync(loc.dir, { recursive: true, mode: SHARED_DIR_MODE });
    fs.chmodSync(loc.dir, SHARED_DIR_MODE);
    st = fs.statSync(loc.dir);
  }
  if (!st.isDirectory()) throw new AdiError('BAD_CONFIG', `${loc.dir} is not a directory.`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new AdiError(
      'PERMISSION_DENIED',
      `The plugins folder ${loc.dir} belongs to uid ${st.uid}, not to you (uid ${uid}). \`sudo adi daemon setup\` gives it to the admin who runs the daemon.`,
    );
  }
  if ((st.mode & 0o022) !== 0 || (st.mode & 0o005) !== 0o005) fs.chmodSync(loc.dir, SHARED_DIR_MODE);
}

/**
 * The ancestors of `dir` the plugin user cannot pass through (no search permission for others), e.g.
 * a 0700 home: then plugins there cannot run as ADI_USER.
 */
export function unreachableAncestors(dir: string): string[] {
  const blocked: string[] = [];
  let current = path.resolve(dir);
  for (;;) {
    try {
      if ((fs.statSync(current).mode & 0o001) === 0) blocked.push(current);
    } catch {
      // not there (yet)
    }
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return blocked.reverse();
}

/**
 * Give a tree the shared modes: directories 0755, files 0644, or 0755 when the owner may execute
 * them. Symbolic links are left alone (chmod would follow them out of the tree).
 */
export function makeTreeReadable(root: string): void {
  const st = fs.lstatSync(root);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    fs.chmodSync(root, SHARED_DIR_MODE);
    for (const entry of fs.readdirSync(root)) makeTreeReadable(path.join(root, entry));
  } else if (st.isFile()) {
    fs.chmodSync(root, (st.mode & 0o100) !== 0 ? 0o755 : 0o644);
  }
}

/**
 * Point `<plugin>/node_modules/adi-daemon` at the running adi: a relative link to the runtime copy
 * when shared (it survives moving the staged plugin into place), else a link to packageRoot().
 * Whatever the plugin brought under that name is replaced: the daemon's own client must answer.
 */
export function linkAdiDaemon(loc: PluginLocation, stagedPluginDir: string): void {
  const modules = path.join(stagedPluginDir, 'node_modules');
  fs.mkdirSync(modules, { recursive: true, mode: loc.shared ? SHARED_DIR_MODE : 0o755 });
  const link = path.join(modules, 'adi-daemon');
  fs.rmSync(link, { recursive: true, force: true });
  // Relative from <root>/<name>/node_modules/ (where the plugin will be), not from the staging folder.
  const target = loc.shared ? path.join('..', '..', '.runtime', 'adi-daemon') : packageRoot();
  fs.symlinkSync(target, link, 'dir');
}

const STAMP_FILE = '.adi-runtime-stamp';

/** A fingerprint of the running package's files: the copy is refreshed when it changes (an upgrade). */
function runtimeStamp(root: string): string {
  const hash = crypto.createHash('sha256').update(packageVersion());
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const st = fs.statSync(full);
        hash.update(`${path.relative(root, full)}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  };
  walk(path.join(root, 'dist', 'src'));
  return hash.digest('hex');
}

/** Where Node would find package `name` from `fromDir` (node_modules up the tree), or null. */
function findPackageDir(fromDir: string, name: string): string | null {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return fs.realpathSync(candidate);
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function dependenciesOf(pkgDir: string): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  return Object.keys(pkg.dependencies ?? {});
}

/**
 * Make `<root>/.runtime/adi-daemon` a current copy of the running adi-daemon (package.json, dist/src
 * and the closure of its `dependencies`, flattened into its node_modules). Optional dependencies are
 * left out. Does nothing when the copy is current.
 * Returns whether it copied.
 */
export function ensureRuntime(loc: PluginLocation): boolean {
  const source = packageRoot();
  const target = runtimeDir(loc);
  const stamp = runtimeStamp(source);
  try {
    if (fs.readFileSync(path.join(target, STAMP_FILE), 'utf8') === stamp) return false;
  } catch {
    // missing: copy
  }
  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true, mode: SHARED_DIR_MODE });
  fs.chmodSync(parent, SHARED_DIR_MODE); // mkdir's mode is cut by the umask (077 would lock ADI_USER out)
  const tmp = fs.mkdtempSync(path.join(parent, '.tmp-'));
  try {
    fs.copyFileSync(path.join(source, 'package.json'), path.join(tmp, 'package.json'));
    fs.cpSync(path.join(source, 'dist', 'src'), path.join(tmp, 'dist', 'src'), { recursive: true });
    const seen = new Set<string>();
    const queue: Array<[string, string]> = dependenciesOf(source).map((d) => [source, d]);
    while (queue.length > 0) {
      const [from, dep] = queue.shift() as [string, string];
      if (seen.has(dep)) continue;
      seen.add(dep);
      const dir = findPackageDir(from, dep);
      if (dir === null)
        throw new AdiError(
          'INTERNAL',
          `adi-daemon's dependency ${dep} is not installed next to ${source}; reinstall adi.`,
        );
      fs.cpSync(dir, path.join(tmp, 'node_modules', dep), {
        recursive: true,
        dereference: false,
        filter: (src) => path.basename(src) !== 'node_modules' || src === dir,
      });
      for (const next of dependenciesOf(dir)) queue.push([dir, next]);
    }
    fs.writeFileSync(path.join(tmp, STAMP_FILE), stamp);
    makeTreeReadable(tmp);
    // Swap: a running plugin has its modules loaded already; a starting one sees the old or the new.
    const old = `${target}.old-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    const hadOld = fs.existsSync(target);
    if (hadOld) fs.renameSync(target, old);
    fs.renameSync(tmp, target);
    if (hadOld) fs.rmSync(old, { recursive: true, force: true });
    return true;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
