// Crash recovery (src/services/recovery.ts) with real processes standing in for what a killed daemon
// left: a recorded pid is touched only when it is provably the recorded process, the whole run (group
// and marked orphans) is ended, and ServiceManager.init() starts again what ran. The end-to-end
// kill -9 of a real daemon is in test/stress/crash-recovery.test.ts.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { MemoryLogger } from '../../src/core/logger.js';
import { daemonInstance } from '../../src/services/launch.js';
import { readProcStatSync } from '../../src/system/proc.js';
import { Recovery } from '../../src/services/recovery.js';
import { readStateFile, writeStateFile, type StateEntry, type WantedService } from '../../src/services/state-file.js';
import { fixture, isAlive, makeEnv, nodeService, taggedPids, texts, waitState, type TestEnv } from './helpers.js';
import { waitFor } from '../helpers/env.js';

let env: TestEnv | null = null;
const spawned: ChildProcess[] = [];
function setup(): TestEnv {
  env = makeEnv();
  return env;
}
void afterEach(async () => {
  for (const c of spawned.splice(0)) c.kill('SIGKILL');
  if (env !== null) {
    for (const pid of taggedPids(env.tag)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await env.cleanup();
  }
  env = null;
});

function starttime(pid: number): number {
  const stat = readProcStatSync(pid);
  assert.ok(stat);
  return stat.starttime;
}

/** A process standing in for a previous daemon's service run: own group, tagged, with `marker` (or none). */
function fakeRun(
  e: TestEnv,
  marker: string | null,
  argv: string[] = ['/bin/sleep', '1000'],
  extra: NodeJS.ProcessEnv = {},
): ChildProcess {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ADI_TEST_TAG: e.tag, ...extra };
  if (marker !== null) childEnv['ADI_SERVICE_ID'] = marker;
  const [command = '/bin/sleep', ...args] = argv;
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'ignore'], env: childEnv });
  spawned.push(child);
  return child;
}

async function firstLine(child: ChildProcess): Promise<string> {
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', () => reject(new Error(`exited before printing: ${out}`)));
  });
}

function entry(
  name: string,
  pid: number,
  marker: string,
  start: number | null,
  extra: Partial<StateEntry> = {},
): StateEntry {
  return { name, pid, pgid: pid, marker, starttime: start, started_at: Date.now() - 1000, stop_timeout: 1, ...extra };
}

const newMarker = (): string => crypto.randomBytes(16).toString('hex');

function writePrevious(e: TestEnv, entries: StateEntry[], wanted: WantedService[] = []): void {
  writeStateFile(e.paths.stateFile, entries, wanted);
}

void describe('crash recovery: judging recorded processes', () => {
  void it('a recorded pid that is now another process (other start time, no marker) is never touched', async () => {
    const e = setup();
    const stranger = fakeRun(e, null);
    await waitFor(() => stranger.pid !== undefined && isAlive(stranger.pid), 10_000, 'the stranger to run');
    const pid = stranger.pid as number;
    writePrevious(e, [entry('web', pid, newMarker(), starttime(pid) + 1)]);
    const log = new MemoryLogger();
    const recovery = Recovery.begin({ stateFile: e.paths.stateFile, log });
    assert.equal(recovery.runs[0]?.verdict, 'reused');
    assert.deepEqual(recovery.names(), [], 'nothing to end');
    await recovery.done;
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(isAlive(pid), 'the stranger lives');
    assert.ok(
      log.lines.some((l) => l.includes(`pid ${pid} recorded for service web is now another process`)),
      log.lines.join('\n'),
    );
  });

  void it('the same pid and start time: the leader, its group and its marked orphans are all ended', async () => {
    const e = setup();
    const marker = newMarker();
    const tree = fakeRun(e, marker, [process.execPath, fixture('tree.js'), 'main']);
    const pids = JSON.parse(await firstLine(tree)) as { main: number; child: number; grandchild: number };
    // A double-forked orphan outside the group, found only by the marker.
    const orphan = fakeRun(e, marker);
    await waitFor(() => orphan.pid !== undefined && isAlive(orphan.pid), 10_000, 'the orphan');
    const all = [pids.main, pids.child, pids.grandchild, orphan.pid as number];
    writePrevious(e, [entry('web', pids.main, marker, starttime(pids.main))]);

    const recovery = Recovery.begin({ stateFile: e.paths.stateFile, log: new MemoryLogger() });
    assert.equal(recovery.runs[0]?.verdict, 'same');
    assert.deepEqual(recovery.names(), ['web']);
    assert.equal(recovery.pending().length, 1, 'kept in the state file until gone');
    await recovery.done;
    for (const pid of all) assert.equal(isAlive(pid), false, `pid ${pid} ended`);
    assert.equal(recovery.pending().length, 0);
  });

  void it('the leader is proven by its marker when no start time was recorded', async () => {
    const e = setup();
    const marker = newMarker();
    const leader = fakeRun(e, marker);
    await waitFor(() => leader.pid !== undefined && isAlive(leader.pid), 10_000, 'the leader');
    writePrevious(e, [entry('web', leader.pid as number, marker, null)]);
    const log = new MemoryLogger();
    const recovery = Recovery.begin({ stateFile: e.paths.stateFile, log });
    assert.equal(recovery.runs[0]?.verdict, 'same');
    await recovery.done;
    // Killed before done resolved; the kernel may take a moment to finish it off.
    await waitFor(() => !isAlive(leader.pid as number), 5000, `the leader to end\n${log.lines.join('\n')}`);
  });

  void it('a dead leader: its marked orphans are ended, an unmarked process is not (its group is unproven)', async () => {
    const e = setup();
    const marker = newMarker();
    const orphan = fakeRun(e, marker);
    const unmarked = fakeRun(e, null);
    await waitFor(() => isAlive(orphan.pid as number) && isAlive(unmarked.pid as number), 10_000, 'the processes');
    // The recorded leader is long gone; the recorded group number is the unmarked process's own.
    writePrevious(e, [entry('web', 999_999_999, marker, 12345, { pgid: unmarked.pid as number })]);
    const recovery = Recovery.begin({ stateFile: e.paths.stateFile, log: new MemoryLogger() });
    assert.equal(recovery.runs[0]?.verdict, 'gone');
    await recovery.done;
    await waitFor(() => !isAlive(orphan.pid as number), 5000, 'the marked orphan to end');
    assert.ok(isAlive(unmarked.pid as number), 'the unproven group is left alone');
  });

  void it("runs the state file never recorded are found by ADI_DAEMON_INSTANCE and ended; another data dir's are not", async () => {
    const e = setup();
    fs.mkdirSync(e.paths.dataDir, { recursive: true });
    const instance = daemonInstance(e.paths.dataDir);
    // No state file at all: the previous daemon died before its first write.
    const ours = fakeRun(e, newMarker(), [process.execPath, fixture('tree.js'), 'main'], {
      ADI_DAEMON_INSTANCE: instance,
      ADI_SERVICE_NAME: 'web',
    });
    const pids = JSON.parse(await firstLine(ours)) as { main: number; child: number; grandchild: number };
    const other = fakeRun(e, newMarker(), ['/bin/sleep', '1000'], {
      ADI_DAEMON_INSTANCE: daemonInstance(`${e.paths.dataDir}-other`),
      ADI_SERVICE_NAME: 'web',
    });
    await waitFor(() => isAlive(other.pid as number), 10_000, "the other data dir's run");
    const log = new MemoryLogger();
    const recovery = Recovery.begin({ stateFile: e.paths.stateFile, log, instance });
    assert.deepEqual(recovery.names(), ['web']);
    assert.equal(recovery.pending()[0]?.pid, pids.main, 'recorded in the new state file until gone');
    assert.ok(
      log.lines.some((l) => /1 run\(s\) of the previous daemon were not in the state file/.test(l)),
      log.lines.join('\n'),
    );
    await recovery.done;
    for (const pid of [pids.main, pids.child, pids.grandchild])
      await waitFor(() => !isAlive(pid), 5000, `pid ${pid} to end`);
    assert.ok(isAlive(other.pid as number), 'a run of another data dir is left alone');
  });

  void it('malformed entries and wanted services are ignored with a warning', () => {
    const e = setup();
    fs.mkdirSync(path.dirname(e.paths.stateFile), { recursive: true });
    fs.writeFileSync(
      e.paths.stateFile,
      JSON.stringify({
        version: 1,
        daemon_pid: 1,
        updated_at: 0,
        services: [
          { name: '../etc', pid: 5, pgid: 5, marker: newMarker(), starttime: 1, started_at: 0 },
          { name: 'ok', pid: 1, pgid: 1, marker: 'x', starttime: 1 },
        ],
        wanted: [
          { name: 'a/b', source: 'file' },
          { name: 'adhoc1', source: 'adhoc', config: { command: '' } },
          { name: 'fine', source: 'file' },
        ],
      }),
    );
    const log = new MemoryLogger();
    const recovery = Recovery.begin({ stateFile: e.paths.stateFile, log });
    assert.deepEqual(recovery.runs, []);
    assert.deepEqual([...recovery.wanted.keys()], ['fine']);
    assert.equal(log.lines.filter((l) => l.startsWith('WARN recovery:')).length, 4, log.lines.join('\n'));
  });
});

void describe('crash recovery: ServiceManager.init()', () => {
  void it('ends the previous processes first, then starts again every service that ran (ad-hoc included)', async () => {
    const e = setup();
    e.writeServices(
      `[filed]\ncommand = ${JSON.stringify(process.execPath)}\nargs = [${JSON.stringify(fixture('sleeper.js'))}]\n\n[idle]\ncommand = "/bin/sleep"\nargs = ["1000"]\n`,
    );
    const m1 = newMarker();
    const m2 = newMarker();
    const oldFiled = fakeRun(e, m1);
    const oldAdhoc = fakeRun(e, m2, ['/bin/sh', fixture('ignore-term.sh')]);
    const adhocPids = JSON.parse(await firstLine(oldAdhoc)) as { main: number; child: number; orphan: number };
    await waitFor(() => isAlive(oldFiled.pid as number), 10_000, 'the old filed run');
    const adhocConfig = { ...nodeService('sleeper.js'), stop_timeout: 0.3 };
    writePrevious(
      e,
      [
        entry('filed', oldFiled.pid as number, m1, starttime(oldFiled.pid as number)),
        entry('temp', adhocPids.main, m2, starttime(adhocPids.main), { stop_timeout: 0.3 }),
      ],
      [
        { name: 'filed', source: 'file' },
        // Recorded as the daemon records it: the normalised definition.
        {
          name: 'temp',
          source: 'adhoc',
          config: {
            command: adhocConfig.command,
            args: adhocConfig.args ?? [],
            env: {},
            working_dir: null,
            restart_on_failure: true,
            max_restarts: 5,
            privileged: false,
            stop_timeout: 0.3,
            ready_notify: false,
            readiness: null,
            liveness: null,
            log_max_bytes: null,
            log_max_files: null,
            pids_max: null,
            memory_max: null,
          },
        },
        { name: 'gone', source: 'file' },
      ],
    );

    await e.manager.init();
    const filed = await waitState(e.manager, 'filed', 'running');
    const temp = await waitState(e.manager, 'temp', 'running');
    assert.equal(temp.source, 'adhoc');
    assert.equal(e.manager.get('idle')?.state, 'stopped', 'a service that did not run stays stopped');
    assert.equal(e.manager.get('gone'), undefined);
    for (const pid of [oldFiled.pid as number, adhocPids.main, adhocPids.child, adhocPids.orphan]) {
      assert.equal(isAlive(pid), false, `old pid ${pid} ended (the TERM-ignoring ones by SIGKILL)`);
    }
    assert.ok(filed.pid !== oldFiled.pid && temp.pid !== adhocPids.main);
    assert.ok(
      e.log.lines.some((l) =>
        /recovery: service gone ran when the previous daemon died but is no longer defined/.test(l),
      ),
      e.log.lines.join('\n'),
    );
    assert.ok(
      e.log.lines.some((l) => /1 auto-started|0 auto-started, 2 restored after a crash/.test(l)),
      e.log.lines.join('\n'),
    );
    assert.ok(texts(await e.manager.tail('temp', 10), 'sys').some((l) => l.startsWith('started pid')));

    // The new state file names the new runs and what is wanted, ad-hoc definition included.
    const state = await waitFor(
      () => {
        const s = readStateFile(e.paths.stateFile);
        return s !== null &&
          s.services.length === 2 &&
          s.services.every((x) => x.pid === filed.pid || x.pid === temp.pid)
          ? s
          : undefined;
      },
      10_000,
      'the state file to list the new runs',
    );
    assert.deepEqual(state.wanted?.map((w) => w.name).sort(), ['filed', 'temp']);
    assert.equal(state.wanted?.find((w) => w.name === 'temp')?.config?.command, process.execPath);

    // A stop is recorded at once: what the user stopped is not wanted after a crash.
    await e.manager.stop('temp', false);
    await waitFor(() => readStateFile(e.paths.stateFile)?.wanted?.length === 1, 10_000, 'temp to be unwanted');
  });

  void it('a service is shown as stopping while its previous processes end, and a start waits for them', async () => {
    const e = setup();
    const marker = newMarker();
    const old = fakeRun(e, marker, ['/bin/sh', fixture('ignore-term.sh')]);
    const pids = JSON.parse(await firstLine(old)) as { main: number };
    writePrevious(
      e,
      [entry('slow', pids.main, marker, starttime(pids.main), { stop_timeout: 0.5 })],
      [
        {
          name: 'slow',
          source: 'adhoc',
          config: {
            command: process.execPath,
            args: [fixture('sleeper.js')],
            env: {},
            working_dir: null,
            restart_on_failure: true,
            max_restarts: 5,
            privileged: false,
            stop_timeout: 0.5,
            ready_notify: false,
            readiness: null,
            liveness: null,
            log_max_bytes: null,
            log_max_files: null,
            pids_max: null,
            memory_max: null,
          },
        },
      ],
    );
    const init = e.manager.init();
    await waitFor(() => e.manager.get('slow')?.state === 'stopping', 10_000, 'slow to show as stopping');
    assert.ok(isAlive(pids.main), 'the old run is still in its grace period');
    await init;
    const info = await waitState(e.manager, 'slow', 'running');
    assert.equal(isAlive(pids.main), false, 'the new run started only after the old one was gone');
    assert.notEqual(info.pid, pids.main);
  });
});
