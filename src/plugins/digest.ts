// What an approval covers: a digest of the plugin's files. Two of them are recorded at install:
//
//   files_digest  the package's own files (everything but node_modules): known before any dependency
//                 is fetched, so an update can be compared with what was approved before asking
//   tree_digest   the installed folder, dependencies included (the adi-daemon link, adi's own code,
//                 left out): what SudoRun checks before running anything as root for the plugin
//
// The digest hashes, in sorted order, each entry's relative path and type, and for files their
// execute/set-id bits and the SHA-256 of their content. SudoRun recomputes the tree digest, but hashes again only the
// files whose metadata (size, mtime, inode, ctime) changed since the last check, so an unchanged
// plugin costs one lstat per entry; the walk yields to the event loop every few milliseconds.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from '../core/paths.js';
import { readApproval } from './approvals.js';
import { pluginDir, pluginsRoot } from './location.js';

/** Our own link to adi's package, not the plugin's code. */
export const ADI_LINK = 'node_modules/adi-daemon';

/** Left out of the files digest: the dependencies, fetched after the question. */
export const notOwnFile = (rel: string): boolean => rel === 'node_modules' || rel.startsWith('node_modules/');

interface CachedFile {
  size: number;
  mtimeMs: number;
  ino: number;
  ctimeMs: number;
  hash: string;
}

/** Per plugin folder: file path -> metadata and hash, replaced whole on each check (so it never grows). */
const CACHE = new Map<string, Map<string, CachedFile>>();

/**
 * The walk works synchronously (a synchronous lstat is several times faster than the thread pool's)
 * and gives the event loop a turn whenever it has held it this long, so a SudoRun of a plugin with
 * thousands of files neither takes long nor stalls the daemon's other clients.
 */
const SLICE_MS = 5;

/** Call `await slice()` between steps: it yields when the current slice is used up. */
function slicer(): () => Promise<void> | undefined {
  let since = performance.now();
  return () => {
    if (performance.now() - since < SLICE_MS) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        since = performance.now();
        resolve();
      }),
    );
  };
}

async function hashFile(file: string, slice: () => Promise<void> | undefined): Promise<string> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const hash = crypto.createHash('sha256');
    const buf = Buffer.allocUnsafe(256 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      await slice();
    }
    return hash.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The digest of the tree at `root`. `exclude` leaves paths out (and everything below them).
 * With `cache`, a file whose metadata is unchanged is not read again.
 */
export async function treeDigest(
  root: string,
  exclude: (rel: string) => boolean,
  cache?: { old: Map<string, CachedFile> | undefined; next: Map<string, CachedFile> },
): Promise<string> {
  const hash = crypto.createHash('sha256');
  const slice = slicer();
  const walk = async (dirRel: string): Promise<void> => {
    const dir = dirRel === '' ? root : path.join(root, dirRel);
    const entries = fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      await slice();
      const rel = dirRel === '' ? entry.name : `${dirRel}/${entry.name}`;
      if (exclude(rel)) continue;
      const full = path.join(dir, entry.name);
      // Folders by their entry type (no stat: their contents are walked anyway); files by lstat.
      if (entry.isDirectory()) {
        hash.update(`d\0${rel}\n`);
        await walk(rel);
        continue;
      }
      const st = fs.lstatSync(full);
      if (st.isFile()) {
        const known = cache?.old?.get(full);
        const h =
          known !== undefined &&
          known.size === st.size &&
          known.mtimeMs === st.mtimeMs &&
          known.ino === st.ino &&
          known.ctimeMs === st.ctimeMs
            ? known.hash
            : await hashFile(full, slice);
        cache?.next.set(full, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs, hash: h });
        hash.update(`f\0${rel}\0${(st.mode & 0o7111).toString(8)}\0${h}\n`);
      } else if (st.isSymbolicLink()) {
        hash.update(`l\0${rel}\0${fs.readlinkSync(full)}\n`);
      } else {
        hash.update(`o\0${rel}\0${st.mode}\n`);
      }
    }
  };
  await walk('');
  return hash.digest('hex');
}

/** The package's own files (no node_modules). */
export function filesDigest(dir: string): Promise<string> {
  return treeDigest(dir, notOwnFile);
}

/** The installed plugin folder, dependencies included, without the adi-daemon link. */
export function installedDigest(dir: string): Promise<string> {
  return treeDigest(dir, (rel) => rel === ADI_LINK);
}

/** installedDigest with the metadata cache (for SudoRun). */
async function cachedInstalledDigest(dir: string): Promise<string> {
  const next = new Map<string, CachedFile>();
  try {
    return await treeDigest(dir, (rel) => rel === ADI_LINK, { old: CACHE.get(dir), next });
  } finally {
    CACHE.set(dir, next);
  }
}

/**
 * Before SudoRun runs anything as root for `plugin`: null when its installed files are those its
 * approval recorded, else why not (the SudoDenied reason).
 */
export async function approvedFilesProblem(
  paths: Paths,
  plugin: string,
  separationActive: boolean,
): Promise<string | null> {
  const approval = readApproval(paths, plugin);
  if (approval === null) return `Plugin ${plugin} has no approval of root access.`;
  const reinstall = `reinstall it (adi plugin install) to review and approve its files`;
  if (approval.tree_digest === undefined) {
    return `The approval of plugin ${plugin} was recorded without a digest of its files, so it cannot show they are still those approved; ${reinstall}.`;
  }
  const dir = pluginDir(pluginsRoot(paths, { separation: () => separationActive }), plugin);
  let now: string;
  try {
    now = await cachedInstalledDigest(dir);
  } catch (err) {
    CACHE.delete(dir); // gone (uninstalled) or unreadable: nothing to keep for it
    return `The files of plugin ${plugin} in ${dir} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); ${reinstall}.`;
  }
  if (now !== approval.tree_digest) {
    return `The files of plugin ${plugin} in ${dir} are no longer those approved on ${approval.approved_at} (changed by hand or by an unfinished update); ${reinstall}.`;
  }
  return null;
}
