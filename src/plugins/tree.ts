// The one way package files get into a plugin folder: a checked copy. The source is hostile (a
// folder someone else wrote, or what an unprivileged account extracted and fetched), so the copy
// refuses what a package never needs and an attacker would use, naming the file:
//
//   symbolic links   (a link leaving the tree reads or replaces files elsewhere; npm packs none)
//   hard links       (a second name for a file outside the tree, or for another file inside it)
//   special files    (a FIFO blocks the reader, a device reads the disk)
//   set-uid/set-gid  (a root-owned copy of such a file would be a root shell for anyone)
//   size and depth   (a package that fills the disk or overflows a recursive walk)
//
// Each file is opened without following links and checked again through its descriptor, so swapping
// a file for a link between the check and the read does not work. The copy belongs to whoever runs
// adi, with plain modes (0644, 0755 when the owner could execute the original).

import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';

export interface TreeLimits {
  /** Files and folders in the tree. */
  maxEntries: number;
  /** Bytes of all files together. */
  maxBytes: number;
  /** Bytes of one file. */
  maxFileBytes: number;
  /** Folders nested below the top. */
  maxDepth: number;
}

/** Generous for any real plugin with its dependencies; far below what hurts a machine. */
export const DEFAULT_TREE_LIMITS: Readonly<TreeLimits> = {
  maxEntries: 50_000,
  maxBytes: 512 * 1024 * 1024,
  maxFileBytes: 128 * 1024 * 1024,
  maxDepth: 32,
};

export interface CopyOptions {
  limits?: TreeLimits;
  /** Left out (not copied, not checked): relative paths with '/' separators. */
  skip?: (rel: string) => boolean;
  /** How to name the source in messages, e.g. "the package" or "the dependencies". */
  what: string;
  /** Counted against the limits too (e.g. the package, when copying its dependencies next to it). */
  already?: { entries: number; bytes: number };
}

export interface CopyTotals {
  entries: number;
  bytes: number;
}

function refuse(what: string, rel: string, why: string): AdiError {
  return new AdiError(
    'BAD_MANIFEST',
    `Refused: ${what} contains ${JSON.stringify(rel)}, ${why}. Nothing was installed.`,
  );
}

export const NOFOLLOW_READ = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/**
 * The path an open descriptor really refers to (Linux /proc), or null where that cannot be known.
 * O_NOFOLLOW guards only the last component: a folder on the way swapped for a link after it was
 * checked shows here as a path outside the tree.
 */
function openedPath(fd: number): string | null {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** Copy what `fd` holds to a new file `dest` with `mode`; refuses more than `size` bytes. */
export function copyFromFd(fd: number, dest: string, size: number, mode: number, tooBig: () => Error): void {
  const out = fs.openSync(
    dest,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
    mode,
  );
  try {
    const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1), 1024 * 1024));
    let copied = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      copied += n;
      if (copied > size) throw tooBig();
      fs.writeSync(out, buf, 0, n);
    }
    fs.fchmodSync(out, mode);
  } finally {
    fs.closeSync(out);
  }
}

/** Copy `from` (a folder) to `to` (must not exist), checking every entry. */
export function copyChecked(from: string, to: string, options: CopyOptions): CopyTotals {
  const limits = options.limits ?? DEFAULT_TREE_LIMITS;
  const totals: CopyTotals = { entries: options.already?.entries ?? 0, bytes: options.already?.bytes ?? 0 };
  const top = fs.lstatSync(from);
  if (!top.isDirectory()) throw new AdiError('BAD_MANIFEST', `${options.what} is not a folder.`);
  const realFrom = fs.realpathSync(from);
  fs.mkdirSync(to, { mode: 0o755 });
  const stack: Array<{ rel: string; depth: number }> = [{ rel: '', depth: 0 }];
  while (stack.length > 0) {
    const { rel: dirRel, depth } = stack.pop() as { rel: string; depth: number };
    const names = fs.readdirSync(path.join(from, dirRel)).sort();
    for (const name of names) {
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      if (options.skip?.(rel) === true) continue;
      totals.entries++;
      if (totals.entries > limits.maxEntries) {
        throw new AdiError(
          'BAD_MANIFEST',
          `Refused: ${options.what} has more than ${limits.maxEntries} files and folders. Nothing was installed.`,
        );
      }
      const src = path.join(from, rel);
      const dest = path.join(to, rel);
      const st = fs.lstatSync(src);
      if (st.isSymbolicLink()) throw refuse(options.what, rel, 'a symbolic link (plugins may not contain links)');
      if (st.isDirectory()) {
        if (depth + 1 > limits.maxDepth)
          throw refuse(options.what, rel, `a folder nested more than ${limits.maxDepth} deep`);
        fs.mkdirSync(dest, { mode: 0o755 });
        stack.push({ rel, depth: depth + 1 });
        continue;
      }
      if (!st.isFile()) throw refuse(options.what, rel, 'a special file (FIFO, socket or device)');
      copyFile(src, dest, st, path.join(realFrom, rel), rel, totals, limits, options.what);
    }
  }
  return totals;
}

function copyFile(
  src: string,
  dest: string,
  st: fs.Stats,
  expected: string,
  rel: string,
  totals: CopyTotals,
  limits: TreeLimits,
  what: string,
): void {
  if ((st.mode & 0o6000) !== 0) throw refuse(what, rel, 'a set-uid or set-gid file');
  if (st.nlink > 1) throw refuse(what, rel, `a hard link (${st.nlink} names for one file)`);
  if (st.size > limits.maxFileBytes)
    throw refuse(what, rel, `${st.size} bytes long (at most ${limits.maxFileBytes} per file)`);
  if (totals.bytes + st.size > limits.maxBytes) {
    throw new AdiError(
      'BAD_MANIFEST',
      `Refused: ${what} is larger than ${limits.maxBytes} bytes. Nothing was installed.`,
    );
  }
  let fd: number;
  try {
    fd = fs.openSync(src, NOFOLLOW_READ);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw refuse(what, rel, 'a symbolic link (plugins may not contain links)');
    throw err;
  }
  try {
    // The same file as checked above, still a plain file of the same size.
    const fst = fs.fstatSync(fd);
    if (
      !fst.isFile() ||
      fst.ino !== st.ino ||
      fst.dev !== st.dev ||
      fst.size !== st.size ||
      fst.nlink > 1 ||
      (fst.mode & 0o6000) !== 0
    ) {
      throw refuse(what, rel, 'a file that changed while it was being copied');
    }
    const real = openedPath(fd);
    if (real !== null && real !== expected)
      throw refuse(what, rel, `a path that led elsewhere (${JSON.stringify(real)}) while it was being copied`);
    copyFromFd(fd, dest, fst.size, (fst.mode & 0o100) !== 0 ? 0o755 : 0o644, () =>
      refuse(what, rel, 'a file that grew while it was being copied'),
    );
  } finally {
    fs.closeSync(fd);
  }
  totals.bytes += st.size;
}
