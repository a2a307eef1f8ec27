// The daemon's record of the service processes that may be alive and of the services meant to run, for
// crash recovery (recovery.ts reads it at the next start to end orphaned processes and start again what
// ran). pid + starttime names one process without pid-reuse doubt; pgid and the marker find the rest of
// the run. Written atomically (temp file + rename) with mode 0600, so a reader never sees half a file.

import fs from 'node:fs';
import path from 'node:path';
import type { NormalizedConfig } from './config.js';

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
  /** The service's stop_timeout when the run started: recovery gives the orphan the same grace. */
  stop_timeout?: number;
}

/** A service that should be running (the state file's `wanted`): started again after a crash. */
export interface WantedService {
  name: string;
  source: 'file' | 'plugin' | 'adhoc';
  /** The definition of an ad-hoc service, which exists nowhere else; absent for the others. */
  config?: NormalizedConfig;
}

/** A state file larger than this is not read (it holds a few hundred bytes per service). */
const MAX_STATE_FILE_BYTES = 32 * 1024 * 1024;

export interface StateFileContents {
  version: number;
  daemon_pid: number;
  updated_at: number;
  services: StateEntry[];
  /** Absent in files of daemons older than crash recovery. */
  wanted?: WantedService[];
}

export function writeStateFile(file: string, entries: readonly StateEntry[], wanted: readonly WantedService[] = []): void {
  const contents: StateFileContents = {
    version: STATE_FILE_VERSION,
    daemon_pid: process.pid,
    updated_at: Date.now(),
    services: [...entries],
    wanted: [...wanted],
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
    if (fs.statSync(file).size > MAX_STATE_FILE_BYTES) return null;
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as StateFileContents).services)) return null;
    return parsed as StateFileContents;
  } catch {
    return null;
  }
}
