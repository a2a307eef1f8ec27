// Small file helpers for the daemon's state files: private directories, atomic writes, pid files.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Create a directory (and parents) that only its owner can enter; tighten it if we own it already. */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if (st.uid === process.getuid?.() && (st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/** Write a file whole or not at all (temp file + rename), with the given mode. */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export function readPidFile(file: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Remove a file only if it still holds our pid (a newer daemon may have replaced it). */
export function removeOwnPidFile(file: string): void {
  if (readPidFile(file) === process.pid) fs.rmSync(file, { force: true });
}

/**
 * Remove what writes of `files` left when their process died mid-write or failed (a full disk):
 * `<name>.<pid>.tmp`, `.<name>.<pid>.<hex>` (writeFileAtomic) and `<name>.stale-<pid>` (the lock's
 * takeover), each only when that pid is no live process. Returns the names removed.
 */
export function removeStaleTemps(files: readonly string[], isLive: (pid: number) => boolean): string[] {
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const dir = path.dirname(f);
    const names = byDir.get(dir) ?? new Set<string>();
    names.add(path.basename(f));
    byDir.set(dir, names);
  }
  const removed: string[] = [];
  for (const [dir, names] of byDir) {
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const entry of entries) {
      const m = /^(?:\.(.+)\.(\d+)\.[0-9a-f]{8}|(.+)\.(\d+)\.tmp|(.+)\.stale-(\d+))$/.exec(entry);
      if (m === null) continue;
      const name = m[1] ?? m[3] ?? m[5];
      const pid = Number(m[2] ?? m[4] ?? m[6]);
      if (name === undefined || !names.has(name) || pid === process.pid || isLive(pid)) continue;
      try {
        fs.rmSync(path.join(dir, entry), { force: true });
        removed.push(path.join(dir, entry));
      } catch {
        // not ours to remove (or gone): left as it is
      }
    }
  }
  return removed;
}
