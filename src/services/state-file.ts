// The daemon's record of the service processes that may be alive and of the services meant to run, for
// crash recovery (recovery.ts reads it at the next start to end orphaned processes and start again what
// ran). pid + starttime names one process without pid-reuse doubt; pgid and the marker find the rest of
// the run.
//
// Two files: a snapshot (`state.json`, written atomically: temp file + rename) and a journal beside it
// (`state.json.journal`) of the changes made since, one JSON line each, appended in one write per
// event-loop turn. A change then costs its own few hundred bytes instead of a rewrite of every
// service's record: with 1,000 services each start rewrote ~600 KB twice, which made starting N
// services quadratic. The snapshot names its journal by a random id, and a journal starts with the id
// of the snapshot it continues; when the journal has grown as large as the snapshot, a new snapshot
// (new id) is written and then a new journal, so a crash between the two leaves a snapshot whose
// journal does not match yet: the snapshot alone is then complete. Both files are mode 0600.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { NormalizedConfig } from '../protocol/config-schema.js';

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

/** A state file (or journal) larger than this is not read (they hold a few hundred bytes per service). */
const MAX_STATE_FILE_BYTES = 32 * 1024 * 1024;

/** The journal is not compacted below this size, whatever the snapshot's: a new snapshot costs ~5 syscalls. */
const MIN_COMPACT_BYTES = 64 * 1024;

export interface StateFileContents {
  version: number;
  daemon_pid: number;
  updated_at: number;
  services: StateEntry[];
  /** Absent in files of daemons older than crash recovery. */
  wanted?: WantedService[];
  /** The id of the journal that continues this snapshot; absent: the snapshot is the whole state. */
  journal?: string;
}

/**
 * One line of the journal (besides the first, `{"journal": id}`): a run recorded or replaced (by
 * marker), a run whose processes are all gone, a service wanted (replacing its previous record), a
 * service no longer wanted.
 */
type JournalRecord = { run: StateEntry } | { end: string } | { want: WantedService } | { unwant: string };

/** The journal beside a snapshot file. */
export function journalFile(file: string): string {
  return `${file}.journal`;
}

/** Write a whole snapshot (no journal continues it). */
export function writeStateFile(
  file: string,
  entries: readonly StateEntry[],
  wanted: readonly WantedService[] = [],
): void {
  writeSnapshot(
    file,
    entries.map((e) => JSON.stringify(e)),
    wanted.map((w) => JSON.stringify(w)),
    null,
  );
}

/** Snapshot text from records already in JSON (the journal keeps them so), one per line. Returns its bytes. */
function writeSnapshot(
  file: string,
  entries: readonly string[],
  wanted: readonly string[],
  journal: string | null,
): number {
  const head = `{"version":${STATE_FILE_VERSION},"daemon_pid":${process.pid},"updated_at":${Date.now()}${journal === null ? '' : `,"journal":"${journal}"`}`;
  const { fd, bytes } = replaceFile(file, `${head},\n"services":[${list(entries)}],\n"wanted":[${list(wanted)}]}\n`);
  fs.closeSync(fd);
  return bytes;
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '' : `\n${items.join(',\n')}\n`;
}

/**
 * Put `text` in place of `file` whole or not at all (temp file + rename), mode 0600, never through a
 * symlink; the directory is created if missing. Returns the file, still open (for appending).
 */
function replaceFile(file: string, text: string): { fd: number; bytes: number } {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(
    tmp,
    fs.constants.O_WRONLY |
      fs.constants.O_APPEND |
      fs.constants.O_CREAT |
      fs.constants.O_TRUNC |
      fs.constants.O_NOFOLLOW,
    0o600,
  );
  try {
    const bytes = writeWhole(fd, text);
    fs.fchmodSync(fd, 0o600);
    fs.renameSync(tmp, file);
    return { fd, bytes };
  } catch (err) {
    fs.closeSync(fd);
    // A failed attempt (a full disk, say) leaves no temp file behind.
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** Write all of `text` or throw: a short write (the disk filled up mid-write) is an error, not a success. */
function writeWhole(fd: number, text: string): number {
  const data = Buffer.from(text);
  const bytes = fs.writeSync(fd, data);
  if (bytes < data.length) {
    throw Object.assign(new Error(`ENOSPC: short write (${bytes} of ${data.length} bytes); no space left on device?`), {
      code: 'ENOSPC',
    });
  }
  return bytes;
}

/**
 * The recorded state: the snapshot with its journal replayed, or null when there is none (or it is
 * unreadable). `onSkip` hears of each journal line that could not be read (and was skipped).
 */
export function readStateFile(file: string, onSkip?: (line: number) => void): StateFileContents | null {
  let snapshot: StateFileContents;
  try {
    if (fs.statSync(file).size > MAX_STATE_FILE_BYTES) return null;
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as StateFileContents).services))
      return null;
    snapshot = parsed as StateFileContents;
  } catch {
    return null;
  }
  if (typeof snapshot.journal !== 'string') return snapshot;
  const records = readJournal(journalFile(file), snapshot.journal, onSkip);
  return records.length === 0 ? snapshot : replay(snapshot, records);
}

/**
 * The records of the journal if it continues the snapshot `id`. A line that is not a record (torn by a
 * crash or a full disk mid-append) is skipped, and reading goes on with the next one.
 */
function readJournal(file: string, id: string, onSkip?: (line: number) => void): JournalRecord[] {
  let text: string;
  try {
    if (fs.statSync(file).size > MAX_STATE_FILE_BYTES) return [];
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  const records: JournalRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    // The text after the last newline: empty, or a torn last line.
    if (line === '' && i === lines.length - 1) break;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = null;
    }
    if (i === 0) {
      // Without its header the journal cannot be tied to this snapshot: none of it is used.
      if (typeof value !== 'object' || value === null || (value as { journal?: unknown }).journal !== id) return [];
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      onSkip?.(i + 1);
      continue;
    }
    records.push(value as JournalRecord);
  }
  return records;
}

function replay(snapshot: StateFileContents, records: readonly JournalRecord[]): StateFileContents {
  // Keyed as the writer keys them: runs by marker, wanted services by name. Entries without a string
  // key are kept as they are (recovery validates and reports every entry).
  const runs = new Map<unknown, StateEntry>();
  const oddRuns: StateEntry[] = [];
  for (const e of snapshot.services) {
    if (typeof e?.marker === 'string') runs.set(e.marker, e);
    else oddRuns.push(e);
  }
  const wanted = new Map<unknown, WantedService>();
  for (const w of Array.isArray(snapshot.wanted) ? snapshot.wanted : []) wanted.set(w?.name, w);
  for (const r of records) {
    if ('run' in r) runs.set(r.run?.marker, r.run);
    else if ('end' in r) runs.delete(r.end);
    else if ('want' in r) wanted.set(r.want?.name, r.want);
    else if ('unwant' in r) wanted.delete(r.unwant);
  }
  return { ...snapshot, services: [...runs.values(), ...oddRuns], wanted: [...wanted.values()] };
}

/**
 * The daemon's writer of the state: what is recorded (kept in memory, as JSON), and the changes not yet
 * written. Callers say what a run owner's entries are now and which services are wanted; only the
 * differences are journalled. flush() writes them: one append, or, when the journal has grown as large
 * as the snapshot (or cannot be appended to), a new snapshot and journal. Each record is written once
 * and rewritten at most once per snapshot of at least its own size, so the cost per change does not
 * depend on the number of services.
 */
export class StateJournal {
  /** Recorded runs by owner (a service, the previous daemon's leftovers): marker → JSON of the entry. */
  private readonly runs = new Map<object, Map<string, string>>();
  /** Recorded wanted services: name → JSON. */
  private readonly wanted = new Map<string, string>();
  private pending: string[] = [];
  /** The open journal (append), or null: the next flush writes a snapshot first. */
  private fd: number | null = null;
  private journalBytes = 0;
  private snapshotBytes = 0;

  constructor(private readonly file: string) {}

  /** The entries of one owner's runs now (empty: none of its runs has processes any more). */
  setRuns(owner: object, entries: readonly StateEntry[]): void {
    const before = this.runs.get(owner);
    const now = new Map<string, string>();
    for (const e of entries) {
      const json = JSON.stringify(e);
      now.set(e.marker, json);
      if (before?.get(e.marker) !== json) this.pending.push(`{"run":${json}}`);
    }
    if (before !== undefined) {
      for (const marker of before.keys()) if (!now.has(marker)) this.pending.push(`{"end":${JSON.stringify(marker)}}`);
    }
    if (now.size === 0) this.runs.delete(owner);
    else this.runs.set(owner, now);
  }

  /** Whether a service is wanted now (null: it is not). */
  setWanted(name: string, wanted: WantedService | null): void {
    const json = wanted === null ? null : JSON.stringify(wanted);
    if ((this.wanted.get(name) ?? null) === json) return;
    if (json === null) {
      this.wanted.delete(name);
      this.pending.push(`{"unwant":${JSON.stringify(name)}}`);
    } else {
      this.wanted.set(name, json);
      this.pending.push(`{"want":${json}}`);
    }
  }

  /** Write the changes. On an error the next flush writes a new snapshot (the state in memory is whole). */
  flush(): void {
    if (this.fd !== null && this.pending.length === 0) return;
    const text = this.pending.length === 0 ? '' : `${this.pending.join('\n')}\n`;
    this.pending = [];
    if (this.fd === null || this.journalBytes + text.length > Math.max(MIN_COMPACT_BYTES, this.snapshotBytes)) {
      this.compact();
      return;
    }
    try {
      this.journalBytes += writeWhole(this.fd, text);
    } catch (err) {
      // Nothing is appended after a torn line: the next flush writes a new snapshot and journal.
      this.closeJournal();
      throw err;
    }
  }

  /** A new snapshot of everything recorded, then a new (empty) journal continuing it. */
  compact(): void {
    this.pending = [];
    this.closeJournal();
    const id = crypto.randomBytes(8).toString('hex');
    const entries: string[] = [];
    for (const runs of this.runs.values()) for (const json of runs.values()) entries.push(json);
    this.snapshotBytes = writeSnapshot(this.file, entries, [...this.wanted.values()], id);
    const journal = replaceFile(journalFile(this.file), `{"journal":"${id}"}\n`);
    this.fd = journal.fd;
    this.journalBytes = journal.bytes;
  }

  /** Stop appending (the files stay as they are). */
  close(): void {
    this.closeJournal();
  }

  private closeJournal(): void {
    if (this.fd === null) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already unusable: nothing to release
    }
    this.fd = null;
  }
}

/** What a StateRecorder reads from the daemon when it writes. */
export interface StateSource<O extends object> {
  /** Every run owner and every name that may be wanted (for a whole write). */
  owners(): Iterable<O>;
  names(): Iterable<string>;
  /** An owner's runs that may still have processes (empty once it is forgotten). */
  runsOf(owner: O): StateEntry[];
  /** The `wanted` record of a name, or null when no service of that name should be running. */
  wanted(name: string): WantedService | null;
}

/**
 * Keeps the state file in step with the daemon: owners (services, recovery's leftovers) and names report
 * that they changed, and one write per event-loop turn records what they are now (only theirs, unless
 * a whole write is due: the first one, and after `everything()`). A write that fails is reported once
 * and retried with the next change; `problem` says why meanwhile.
 */
export class StateRecorder<O extends object> {
  private readonly journal: StateJournal;
  private readonly changedOwners = new Set<O>();
  private readonly changedNames = new Set<string>();
  private whole = true;
  private scheduled = false;
  private closed = false;
  private error: string | null = null;

  constructor(
    private readonly file: string,
    private readonly source: StateSource<O>,
    private readonly log: { info(message: string): void; warn(message: string): void },
  ) {
    this.journal = new StateJournal(file);
  }

  /** Why the file cannot be written now (a full disk, say), or null. */
  get problem(): string | null {
    return this.error;
  }

  /** An owner's runs changed, and so may the `wanted` record of `name`. */
  changed(owner: O, name?: string): void {
    this.changedOwners.add(owner);
    if (name !== undefined) this.changedNames.add(name);
    this.schedule();
  }

  /** A name's `wanted` record may have changed. */
  nameChanged(name: string): void {
    this.changedNames.add(name);
    this.schedule();
  }

  /** The next write looks at every owner and name. */
  everything(): void {
    this.whole = true;
  }

  /** A write is due (coalesced: 100 services spawning at once write the file once). */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.write();
    });
  }

  /** Record what changed since the last write; `snapshot`: a whole new snapshot (compacted) too. */
  write(snapshot = false): void {
    if (this.closed) return;
    if (this.whole) {
      this.whole = false;
      for (const o of this.source.owners()) this.changedOwners.add(o);
      for (const name of this.source.names()) this.changedNames.add(name);
    }
    try {
      for (const o of this.changedOwners) this.journal.setRuns(o, this.source.runsOf(o));
      for (const name of this.changedNames) this.journal.setWanted(name, this.source.wanted(name));
      this.changedOwners.clear();
      this.changedNames.clear();
      if (snapshot) this.journal.compact();
      else this.journal.flush();
      if (this.error !== null) {
        this.error = null;
        this.log.info(`services: ${this.file} is written again`);
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (this.error === null) this.log.warn(`services: cannot write ${this.file}: ${message}`);
      this.error = message;
    }
  }

  /** Final: nothing is written afterwards (a late callback must not recreate a directory being removed). */
  close(): void {
    this.closed = true;
    this.journal.close();
  }
}
