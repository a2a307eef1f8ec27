// The daemon's record of the service processes that may be alive, for crash recovery (a later issue
// reads it after an unclean daemon exit to find and end orphaned services). pid + starttime names one
// process without pid-reuse doubt; pgid and the marker find the rest of the run. Written atomically
// (temp file + rename) with mode 0600, so a reader never sees half a file.

import fs from 'node:fs';
import path from 'node:path';

export const STATE_FILE_VERSION = 1;

export interface StateEntry {
  name: string;
  pid: number;
  pgid: number;
  /** The run's ADI_SERVICE_ID value. */
  marker: string;
  /** /proc/<pid>/stat field 22 (clock ticks after boot), null where there is no /proc. */
  starttime: number | null;
  /** Date.now() at spawn. */
  started_at: number;
}

export interface StateFileContents {
  version: number;
  daemon_pid: number;
  updated_at: number;
  services: StateEntry[];
}

export function writeStateFile(file: string, entries: readonly StateEntry[]): void {
  const contents: StateFileContents = {
    version: STATE_FILE_VERSION,
    daemon_pid: process.pid,
    updated_at: Date.now(),
    services: [...entries],
  };
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(contents, null, 1) + '\n');
    fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function readStateFile(file: string): StateFileContents | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as StateFileContents).services)) return null;
    return parsed as StateFileContents;
  } catch {
    return null;
  }
}
