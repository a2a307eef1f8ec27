// The state file (src/services/state-file.ts): a snapshot plus a journal of the changes since. What the
// reader sees is what the writer recorded, whatever point a crash stopped it at; and a change costs its
// own size, not the size of everything recorded (the quadratic start of 1,000 services, issue 7).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import {
  journalFile,
  readStateFile,
  StateJournal,
  StateRecorder,
  writeStateFile,
  type StateEntry,
  type WantedService,
} from '../../src/services/state-file.js';
import { MemoryLogger } from '../../src/core/logger.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function stateFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-state-'));
  dirs.push(dir);
  return path.join(dir, 'data', 'state.json');
}

function entry(name: string, pid: number, starttime: number | null = null): StateEntry {
  return {
    name,
    pid,
    pgid: pid,
    marker: `${pid.toString(16).padStart(8, '0')}${'0'.repeat(24)}`,
    starttime,
    started_at: 1000,
    stop_timeout: 2,
  };
}

const adhoc = (name: string): WantedService => ({
  name,
  source: 'adhoc',
  config: { command: '/bin/sleep', args: ['1000'] } as unknown as NonNullable<WantedService['config']>,
});

const sortByPid = (entries: StateEntry[]): StateEntry[] => [...entries].sort((a, b) => a.pid - b.pid);

describe('state file: snapshot and journal', () => {
  it('appends changes to the journal, leaves the snapshot alone, and reads back the current state', () => {
    const file = stateFile();
    const j = new StateJournal(file);
    const a = {};
    const b = {};
    j.setRuns(a, [entry('a', 100)]);
    j.setWanted('a', adhoc('a'));
    j.flush();
    const snapshot = fs.readFileSync(file, 'utf8');
    assert.deepEqual(readStateFile(file)?.services, [entry('a', 100)]);

    j.setRuns(a, [entry('a', 100, 555)]);
    j.setRuns(b, [entry('b', 200)]);
    j.setWanted('b', { name: 'b', source: 'file' });
    j.flush();
    j.setRuns(b, []);
    j.setWanted('b', null);
    j.setWanted('a', adhoc('a')); // unchanged: nothing written
    j.flush();

    assert.equal(fs.readFileSync(file, 'utf8'), snapshot, 'the snapshot is not rewritten for a change');
    const journal = fs.readFileSync(journalFile(file), 'utf8').trim().split('\n');
    assert.equal(journal.length, 1 + 5, `header and five records: ${journal.join('\n')}`);
    const state = readStateFile(file);
    assert.deepEqual(state?.services, [entry('a', 100, 555)]);
    assert.deepEqual(state?.wanted, [adhoc('a')]);
    for (const f of [file, journalFile(file)]) assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
    j.close();
  });

  it('a change costs its own size however many services are recorded, and compaction keeps the journal bounded', () => {
    const file = stateFile();
    const j = new StateJournal(file);
    const owners = Array.from({ length: 2000 }, () => ({}));
    owners.forEach((o, i) => {
      j.setRuns(o, [entry(`s${i}`, 1000 + i)]);
      j.setWanted(`s${i}`, adhoc(`s${i}`));
    });
    j.flush();
    const snapshotBytes = fs.statSync(file).size;
    assert.ok(snapshotBytes > 200_000, `a large snapshot: ${snapshotBytes}`);

    const before = fs.statSync(journalFile(file)).size;
    j.setRuns(owners[7] as object, [entry('s7', 1007, 42)]);
    j.flush();
    const cost = fs.statSync(journalFile(file)).size - before;
    assert.ok(cost > 0 && cost < 400, `one change appended ${cost} bytes`);

    // Many more changes than the snapshot holds: the journal is compacted, never larger than the snapshot.
    let maxJournal = 0;
    let maxSnapshot = snapshotBytes;
    let snapshots = 0;
    let previous = 0;
    for (let round = 1; round <= 3; round++) {
      owners.forEach((o, i) => {
        j.setRuns(o, [entry(`s${i}`, 1000 + i, round)]);
        j.flush();
        const journalBytes = fs.statSync(journalFile(file)).size;
        if (journalBytes < previous) snapshots++;
        previous = journalBytes;
        maxJournal = Math.max(maxJournal, journalBytes);
        maxSnapshot = Math.max(maxSnapshot, fs.statSync(file).size);
      });
    }
    assert.ok(snapshots >= 1 && snapshots <= 3, `compacted ${snapshots} times in 6,000 changes`);
    assert.ok(maxJournal <= maxSnapshot + 400, `journal at most ${maxJournal} bytes, snapshot at most ${maxSnapshot}`);
    const state = readStateFile(file);
    assert.deepEqual(
      sortByPid(state?.services ?? []),
      owners.map((_, i) => entry(`s${i}`, 1000 + i, 3)),
    );
    assert.equal(state?.wanted?.length, 2000);
    j.close();
  });

  it('a torn last line is ignored, and so is a journal that does not continue the snapshot', () => {
    const file = stateFile();
    const j = new StateJournal(file);
    const a = {};
    j.setRuns(a, [entry('a', 100)]);
    j.flush();
    j.setRuns(a, [entry('a', 100, 7)]);
    j.flush();
    // A crash in the middle of an append.
    fs.appendFileSync(journalFile(file), '{"end":"0000');
    assert.deepEqual(readStateFile(file)?.services, [entry('a', 100, 7)]);

    // A crash after a new snapshot and before its journal: the old journal (another id) must not apply.
    const journal = fs.readFileSync(journalFile(file));
    j.compact();
    j.setRuns(a, []);
    fs.writeFileSync(journalFile(file), journal);
    assert.deepEqual(readStateFile(file)?.services, [entry('a', 100, 7)]);

    // A snapshot written whole (an older daemon, a test) has no journal.
    writeStateFile(file, [entry('z', 900)], []);
    assert.deepEqual(readStateFile(file)?.services, [entry('z', 900)]);
    j.close();
  });

  it('a damaged line in the middle of the journal is skipped, and the records after it still apply', () => {
    const file = stateFile();
    const j = new StateJournal(file);
    const a = {};
    const b = {};
    j.setRuns(a, [entry('a', 100)]);
    j.flush();
    // A torn write that a later append continued on a line of its own (as a full disk can leave).
    fs.appendFileSync(journalFile(file), '{"run":{"name":"x","pid":7,"pg\n');
    j.setRuns(b, [entry('b', 200)]);
    j.flush();
    const skipped: number[] = [];
    assert.deepEqual(sortByPid(readStateFile(file, (line) => skipped.push(line))?.services ?? []), [
      entry('a', 100),
      entry('b', 200),
    ]);
    // Line 1 is the header; the first flush put 'a' in the snapshot.
    assert.deepEqual(skipped, [2]);
    j.close();
  });

  it('after a failed append the next write is a whole snapshot', () => {
    const file = stateFile();
    const j = new StateJournal(file);
    const a = {};
    j.setRuns(a, [entry('a', 100)]);
    j.flush();
    // The journal becomes unwritable (as on a full disk): the change is lost from the file for now...
    fs.closeSync((j as unknown as { fd: number }).fd);
    j.setRuns(a, [entry('a', 100, 9)]);
    assert.throws(() => j.flush(), /EBADF/);
    // ...and the next write brings the file up to date with everything, not only the next change.
    j.setRuns({}, [entry('b', 200)]);
    j.flush();
    assert.deepEqual(sortByPid(readStateFile(file)?.services ?? []), [entry('a', 100, 9), entry('b', 200)]);
    j.close();
  });
});

void describe('StateRecorder', () => {
  void it('writes what changed once per turn, the whole state first, and reports a failing write once', async () => {
    const file = stateFile();
    const runs = new Map<object, StateEntry[]>();
    const wanted = new Map<string, WantedService>();
    const a = {};
    const b = {};
    runs.set(a, [entry('a', 100)]);
    wanted.set('a', { name: 'a', source: 'file' });
    const log = new MemoryLogger();
    const recorder = new StateRecorder<object>(
      file,
      {
        owners: () => runs.keys(),
        names: () => wanted.keys(),
        runsOf: (o) => runs.get(o) ?? [],
        wanted: (name) => wanted.get(name) ?? null,
      },
      log,
    );
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

    // The first write is whole: `a` is recorded without having reported a change.
    recorder.schedule();
    await turn();
    assert.deepEqual(readStateFile(file)?.services, [entry('a', 100)]);
    assert.deepEqual(readStateFile(file)?.wanted, [{ name: 'a', source: 'file' }]);

    // Only what reports a change is looked at again.
    runs.set(b, [entry('b', 200)]);
    runs.set(a, []);
    wanted.delete('a');
    recorder.changed(b, 'b');
    await turn();
    assert.deepEqual(sortByPid(readStateFile(file)?.services ?? []), [entry('a', 100), entry('b', 200)]);
    recorder.changed(a, 'a');
    await turn();
    assert.deepEqual(readStateFile(file)?.services, [entry('b', 200)]);
    assert.deepEqual(readStateFile(file)?.wanted, []);
    assert.equal(recorder.problem, null);

    // A directory where the snapshot goes: every write fails, reported once, and then recovers.
    recorder.close();
    const broken = new StateRecorder<object>(
      file,
      { owners: () => [], names: () => [], runsOf: () => [], wanted: () => null },
      log,
    );
    fs.rmSync(file);
    fs.mkdirSync(file);
    broken.write();
    broken.write(true);
    assert.match(broken.problem ?? '', /EISDIR|EEXIST|ENOTEMPTY|directory/i);
    assert.equal(log.lines.filter((l) => l.startsWith('WARN') && l.includes('cannot write')).length, 1);
    fs.rmdirSync(file);
    broken.write(true);
    assert.equal(broken.problem, null);
    assert.ok(log.lines.some((l) => l.includes('is written again')));
    broken.close();
  });
});
