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
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`,
  );
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

/** Whether an error is the disk (or the user's quota) being full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Size of the disk reserve: the lock, token and pid files and a state snapshot of a few hundred services. */
export const DISK_RESERVE_BYTES = 256 * 1024;

/**
 * A file of zeros the daemon keeps in its data dir and deletes when it finds the disk full while it
 * starts, so that the few small files a start must write (lock, token, pid) fit (the "ballast file"
 * of CockroachDB and others). It is made again, when there is room, at the end of every start.
 */
export class DiskReserve {
  constructor(
    readonly file: string,
    private readonly bytes = DISK_RESERVE_BYTES,
  ) {}

  /** Make the reserve if it is missing or short; false when there is no room for it (nothing is left behind). */
  ensure(): boolean {
    try {
      if (fs.lstatSync(this.file).size >= this.bytes) return true;
    } catch {
      // missing: made below
    }
    let fd: number | null = null;
    try {
      fd = fs.openSync(
        this.file,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
        0o600,
      );
      // Real blocks (zeros written, not a sparse file): deleting them must free space.
      const chunk = Buffer.alloc(64 * 1024);
      for (let at = 0; at < this.bytes; at += chunk.length) {
        if (fs.writeSync(fd, chunk, 0, Math.min(chunk.length, this.bytes - at)) === 0) throw new Error('short write');
      }
      fs.fsyncSync(fd);
      return true;
    } catch {
      if (fd !== null) fs.closeSync(fd);
      fd = null;
      fs.rmSync(this.file, { force: true });
      return false;
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
  }

  /** Delete the reserve; returns whether there was one to free. */
  release(): boolean {
    try {
      fs.unlinkSync(this.file);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Run `write`; if it fails because the disk is full and the reserve exists, free the reserve and
   * run it once more. `onRelease` hears of the release.
   */
  retryOnFull<T>(write: () => T, onRelease: () => void): T {
    try {
      return write();
    } catch (err) {
      if (!isDiskFull(err) || !this.release()) throw err;
      onRelease();
      return write();
    }
  }
}
