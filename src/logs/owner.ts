// Who a service's log belongs to. Logs are kept by service name and outlive a definition, so a name
// that passes to another owner (a plugin defining a name the admin's file used, or another plugin's
// after it was uninstalled) must not hand the old owner's lines to the new one. The owner is recorded
// beside the log (`NAME.owner`); when a log is claimed by a different owner, its segments move to
// `.previous/NAME.<time>/` in the logs directory (left on disk for the admin, never served by the
// daemon) and the new owner's log starts empty. Service names never start with '.', so that directory
// cannot be taken for a service's log.

import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import { ADMIN } from '../core/identity.js';
import { segmentPaths } from './store.js';

/** An owner is an identity's label (core/identity.ts): `admin` or `plugin:NAME`. */
const ADMIN_OWNER = ADMIN.label;

/** Where the segments of earlier owners go, inside the logs directory. */
export const PREVIOUS_DIR = '.previous';

/** Rotated segments are numbered 1..log_max_files (at most 100); a higher number is not looked for. */
const MAX_SEGMENT = 1000;

function ownerFile(dir: string, name: string): string {
  return path.join(dir, `${name}.owner`);
}

/**
 * The files of log `name` (live and rotated segments) in `dir`, found by probing their names rather
 * than listing the directory, which holds every service's logs: a claim costs what this log has.
 * Rotation keeps the numbers contiguous from 1, so the probe stops at the first number with neither file.
 */
function segmentFiles(dir: string, name: string): string[] {
  const found: string[] = [];
  const exists = (file: string): boolean => {
    try {
      fs.lstatSync(path.join(dir, file));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
        return false;
      throw err;
    }
  };
  for (let k = 0; k <= MAX_SEGMENT; k++) {
    const { data, index } = segmentPaths(name, k);
    const present = [index, data].filter(exists);
    if (present.length === 0 && k > 0) break;
    found.push(...present);
  }
  return found;
}

/** What claimLog did, for the daemon log. */
export interface Claim {
  /** Where the earlier owner's segments went, or null. */
  moved: string | null;
  /** They could not be moved (e.g. no room for the directory), so they were deleted. */
  removed: boolean;
  /** The owner could not be written down (e.g. a full disk); the next claim treats the log as the admin's. */
  unrecorded: Error | null;
}

/**
 * Make `owner` the owner of log `name` before it is opened for them. A log written before owners were
 * recorded counts as the admin's. The earlier owner's segments are moved away, or deleted when they
 * cannot be moved; only when neither works does this throw, and the log must then not be opened.
 */
export function claimLog(dir: string, name: string, owner: string): Claim {
  let recorded: string | null = null;
  try {
    recorded = fs.readFileSync(ownerFile(dir, name), 'utf8').trim();
  } catch (err) {
    // ENOTDIR: the logs directory is not one (replaced by a file); no earlier line can be served
    // either, and the log reports its write errors like any other.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
  }
  const claim: Claim = { moved: null, removed: false, unrecorded: null };
  if (recorded === owner) return claim;
  const files = segmentFiles(dir, name);
  if ((recorded ?? ADMIN_OWNER) !== owner && files.length > 0) {
    try {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const to = path.join(dir, PREVIOUS_DIR, `${name}.${stamp}`);
      fs.mkdirSync(to, { recursive: true, mode: 0o700 });
      // Each segment's index before its data (segmentFiles' order): a segment whose index is gone is
      // skipped by readers, never misread.
      for (const file of files) fs.renameSync(path.join(dir, file), path.join(to, file));
      claim.moved = to;
      try {
        writeFileAtomic(path.join(to, 'owner'), `${recorded ?? ADMIN_OWNER}\n`);
      } catch {
        // The directory's name and the daemon log say where the files came from.
      }
    } catch {
      for (const file of files) {
        try {
          fs.unlinkSync(path.join(dir, file));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      claim.removed = true;
    }
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(ownerFile(dir, name), `${owner}\n`);
  } catch (err) {
    claim.unrecorded = err as Error;
  }
  return claim;
}
