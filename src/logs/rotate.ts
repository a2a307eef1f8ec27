// Size-based rotation of one log's segments: `x.log`/`x.idx` -> `.1` -> ... -> `.N`, the oldest dropped.
// rename() moves a directory entry (a planted symlink is moved, never followed), and each step is
// atomic. The daemon is the only reader of these files, and its readers open a segment's two files in
// one turn of the event loop, which a rotation (synchronous, in the same loop) never splits.

import fs from 'node:fs';
import path from 'node:path';
import { ignoreMissing } from '../core/rotate-file.js';
import { segmentPaths } from './store.js';

/**
 * Shift the rotated segments up by one and move the live one to `.1`. Renaming onto `.maxFiles`
 * replaces the oldest; with maxFiles 0 the live segment is removed. Files numbered beyond maxFiles (left
 * by an earlier, larger setting) are removed too, so disk use stays bounded by the current setting.
 * `base` is the path without extension (`dir/name`). Throws on any error other than a missing file.
 */
export function rotateFiles(base: string, maxFiles: number): void {
  const live = segmentPaths(base, 0);
  if (maxFiles <= 0) {
    ignoreMissing(() => fs.unlinkSync(live.index));
    ignoreMissing(() => fs.unlinkSync(live.data));
  } else {
    for (let i = maxFiles - 1; i >= 0; i--) {
      const from = segmentPaths(base, i);
      const to = segmentPaths(base, i + 1);
      // Index first: a segment whose index is gone is skipped by readers, never misread.
      ignoreMissing(() => fs.renameSync(from.index, to.index));
      ignoreMissing(() => fs.renameSync(from.data, to.data));
    }
  }
  removeBeyond(base, maxFiles);
}

function removeBeyond(base: string, maxFiles: number): void {
  const dir = path.dirname(base);
  const name = path.basename(base);
  for (const entry of fs.readdirSync(dir)) {
    for (const ext of ['.log.', '.idx.']) {
      const prefix = name + ext;
      if (!entry.startsWith(prefix)) continue;
      const suffix = entry.slice(prefix.length);
      if (/^[1-9]\d{0,5}$/.test(suffix) && Number(suffix) > maxFiles) {
        ignoreMissing(() => fs.unlinkSync(path.join(dir, entry)));
      }
    }
  }
}
