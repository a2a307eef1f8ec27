// Command resolution for Run, SudoRun and privileged_commands patterns. The caller's PATH is never consulted: a
// plugin that puts its own `iptables` first in its PATH must not get it run as root.

import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';

/** The only directories a bare command name is looked up in (the same list as Debian's sudo secure_path). */
export const SECURE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const SECURE_DIRS: readonly string[] = SECURE_PATH.split(':');

/**
 * Turns a command as given (`echo`, `/bin/echo`) into the canonical absolute path that is compared
 * against patterns and executed.
 *
 * - A bare name (no `/`) is looked up in SECURE_PATH only.
 * - An absolute path is taken as is; a relative path with a `/` (`./x`, `bin/x`) is refused: it would
 *   depend on the daemon's working directory.
 * - The directory part is resolved with realpath, so `/bin/echo` and `/usr/bin/echo` agree on a
 *   merged-/usr system. The last component is kept as named even when it is a symlink: multi-call
 *   binaries (iptables, ip6tables, ebtables -> xtables-nft-multi; busybox) pick their behaviour from
 *   argv[0], so running the link target would break them, and comparing link targets would let an
 *   approval of `iptables` grant `ip6tables` and `ebtables` as well.
 * - The result must be (or link to) a regular file with an execute bit.
 */
export function resolveCommand(cmd: string): string {
  if (typeof cmd !== 'string' || cmd === '') {
    throw new AdiError('BAD_ARGUMENT', 'The command is empty: give an absolute path or a bare program name.');
  }
  if (cmd.includes('\0')) {
    throw new AdiError('BAD_ARGUMENT', `The command ${JSON.stringify(cmd)} contains a NUL byte.`);
  }
  if (!cmd.includes('/')) {
    for (const dir of SECURE_DIRS) {
      const found = executableAt(path.posix.join(dir, cmd));
      if (found !== null) return found;
    }
    throw new AdiError(
      'COMMAND_NOT_FOUND',
      `No executable named ${JSON.stringify(cmd)} in the secure PATH (${SECURE_PATH}); the caller's PATH is never used. Give its absolute path.`,
    );
  }
  if (!path.posix.isAbsolute(cmd)) {
    throw new AdiError(
      'BAD_ARGUMENT',
      `The command ${JSON.stringify(cmd)} is a relative path: give an absolute path, or a bare name to look up in the secure PATH (${SECURE_PATH}).`,
    );
  }
  const found = executableAt(cmd);
  if (found === null) {
    throw new AdiError('COMMAND_NOT_FOUND', `${JSON.stringify(cmd)} is not an executable file.`);
  }
  return found;
}

/** The canonical path of `file` when it is an executable regular file, else null. */
function executableAt(file: string): string | null {
  const base = path.posix.basename(file);
  // A trailing slash or a final `.`/`..` names a directory, never a program.
  if (file.endsWith('/') || base === '' || base === '.' || base === '..') return null;
  let dir: string;
  try {
    dir = fs.realpathSync(path.posix.dirname(file));
  } catch {
    return null;
  }
  const canonical = path.posix.join(dir, base);
  try {
    const st = fs.statSync(canonical);
    if (!st.isFile() || (st.mode & 0o111) === 0) return null;
  } catch {
    return null;
  }
  return canonical;
}

/**
 * Whether `file` (a canonical path) can only be changed by root: the file, every symlink on the way to
 * it and every directory holding one of them owned by uid 0 and not writable by others (group-writable
 * only for group 0). A privileged command that a plugin user could replace would hand that user root,
 * whatever the pattern says. Returns null when trusted, else the reason.
 */
export function untrustedReason(file: string): string | null {
  const checked = new Set<string>();
  const check = (p: string, st: fs.Stats): string | null => {
    if (st.uid !== 0) return `${p} is owned by uid ${st.uid}, not root`;
    if ((st.mode & 0o002) !== 0 && !st.isSymbolicLink()) return `${p} is writable by everyone`;
    if ((st.mode & 0o020) !== 0 && st.gid !== 0 && !st.isSymbolicLink()) return `${p} is writable by group ${st.gid}`;
    return null;
  };
  const checkDirs = (dir: string): string | null => {
    let current = dir;
    while (!checked.has(current)) {
      checked.add(current);
      let st: fs.Stats;
      try {
        st = fs.statSync(current);
      } catch {
        return `${current} cannot be inspected`;
      }
      const bad = check(current, st);
      if (bad !== null) return bad;
      const parent = path.posix.dirname(current);
      if (parent === current) break;
      current = parent;
    }
    return null;
  };
  let hop = file;
  // 40 hops, like the kernel's own symlink limit.
  for (let i = 0; i < 40; i++) {
    let dir: string;
    let st: fs.Stats;
    try {
      dir = fs.realpathSync(path.posix.dirname(hop));
      st = fs.lstatSync(hop);
    } catch {
      return `${hop} cannot be inspected`;
    }
    const badDir = checkDirs(dir);
    if (badDir !== null) return badDir;
    const bad = check(hop, st);
    if (bad !== null) return bad;
    if (!st.isSymbolicLink()) return null;
    hop = path.posix.resolve(dir, fs.readlinkSync(hop));
  }
  return `${file}: too many symbolic links`;
}
