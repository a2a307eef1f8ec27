// Size-based rotation of one plain file (the audit log): `x.log` -> `x.log.1` -> ... -> `x.log.N`, the
// oldest dropped. rename() moves a directory entry (a planted symlink is moved, never followed), and
// each step is atomic, so a reader sees every file either before or after its move. Service logs rotate
// their data and index files together (logs/rotate.ts).

import fs from 'node:fs';
import path from 'node:path';

/** `${file}.${index}`: index 1 is the newest rotated file. */
export function rotatedPath(file: string, index: number): string {
  return `${file}.${index}`;
}

/** Run a file operation; a missing file is not an error (rotation steps over gaps). */
export function ignoreMissing(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Shift the rotated files up by one and move the live file to `.1`. Renaming onto `.maxFiles` replaces
 * the oldest; with maxFiles 0 the live file is simply removed. Files numbered beyond maxFiles (left by an
 * earlier, larger setting) are removed too, so disk use stays bounded by the current setting.
 * Throws on any error other than a missing file; the caller decides what that means for its writes.
 */
export function rotateFiles(file: string, maxFiles: number): void {
  if (maxFiles <= 0) {
    ignoreMissing(() => fs.unlinkSync(file));
  } else {
    for (let i = maxFiles - 1; i >= 1; i--) {
      ignoreMissing(() => fs.renameSync(rotatedPath(file, i), rotatedPath(file, i + 1)));
    }
    ignoreMissing(() => fs.renameSync(file, rotatedPath(file, 1)));
  }
  removeBeyond(file, maxFiles);
}

function removeBeyond(file: string, maxFiles: number): void {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.`;
  for (const entry of fs.readdirSync(dir)) {
    if (!entry.startsWith(prefix)) continue;
    const suffix = entry.slice(prefix.length);
    if (/^[1-9]\d{0,5}$/.test(suffix) && Number(suffix) > maxFiles) {
      ignoreMissing(() => fs.unlinkSync(path.join(dir, entry)));
    }
  }
}
