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
  fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
  try {
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
