// A full or unwritable log directory: the daemon says so clearly (its own log, and the service's
// last_error in ListServices), while it and every service carry on; logging resumes once the disk
// allows. "Full" is a 64 KiB tmpfs mounted over the logs directory (needs root; skipped otherwise);
// "unwritable" is the logs directory replaced by a regular file while services write to it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { FIXTURES, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { daemonLog, killAll, markedProcesses, startDaemon } from './helpers.js';

const homes: TempHome[] = [];
const mounts: string[] = [];
after(async () => {
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // already gone
    }
  }
  for (const h of homes) killAll(markedProcesses(h.home).map((p) => p.pid));
  await Promise.all(homes.map((h) => h.cleanup()));
});

const node = JSON.stringify(process.execPath);
const fx = (name: string): string => JSON.stringify(path.join(FIXTURES, name));

function setUp(services: string): TempHome {
  // The daemon's own log lives outside the logs directory under test, so it can report the failure.
  const h = tempHome();
  h.env['ADI_DAEMON_LOG'] = path.join(h.home, 'daemon.log');
  h.paths.logFile = path.join(h.home, 'daemon.log');
  homes.push(h);
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  fs.writeFileSync(h.paths.servicesFile, services);
  return h;
}

function tryMountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'ignore' });
    mounts.push(dir);
    return true;
  } catch {
    return false;
  }
}

/** Write `file` until the filesystem has no room left. */
function fillUp(file: string): void {
  const fd = fs.openSync(file, 'a');
  const block = Buffer.alloc(1024);
  try {
    for (;;) fs.writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

async function info(client: DaemonClient, name: string): Promise<ServiceInfo | undefined> {
  return (await client.listServices()).find((s) => s.name === name);
}

describe('log directory faults', () => {
  test('a full log filesystem: a clear error, the daemon and services carry on, logging resumes when space returns', async (t) => {
    const h = setUp(
      [
        '[noisy]',
        `command = ${node}`,
        `args = [${fx('flood.js')}, "20000", "sleep"]`,
        'auto_start = true',
        '',
        '[quiet]',
        `command = ${node}`,
        `args = [${fx('ticker.js')}, "200"]`,
        'auto_start = true',
        '',
      ].join('\n'),
    );
    fs.mkdirSync(h.paths.logsDir, { recursive: true, mode: 0o700 });
    if (!tryMountTmpfs(h.paths.logsDir, '64k')) {
      t.skip('cannot mount a tmpfs here (not root?); the replaced-directory test covers unwritable logs');
      return;
    }
    const pid = await startDaemon(h);
    const client = new DaemonClient({ env: h.env });
    try {
      await waitFor(() => /service \w+: cannot write its log .*ENOSPC/.test(daemonLog(h)), 20_000, 'the ENOSPC report');
      const line = /.*cannot write its log .*ENOSPC.*/.exec(daemonLog(h))?.[0] ?? '';
      t.diagnostic(`daemon log: ${line}`);
      assert.match(line, /WARN .*\(the service keeps running; its output is dropped until the log can be written\)/);
      // A failed write is rolled back, which frees a little room that a later small chunk may fit in
      // (and clear the error). Fill that room, so every write from here on fails.
      const filler = path.join(h.paths.logsDir, 'filler');
      fillUp(filler);
      const errors = async (): Promise<string> =>
        `${(await info(client, 'noisy'))?.last_error} ${(await info(client, 'quiet'))?.last_error}`;
      await waitFor(async () => /cannot write its log .*ENOSPC/.test(await errors()), 10_000, 'last_error to say so');
      assert.equal((await info(client, 'noisy'))?.state, 'running');
      assert.equal((await info(client, 'quiet'))?.state, 'running');
      // The daemon serves requests, and new services start, while the disk is full.
      assert.equal((await client.ping()).pid, pid);
      await client.startService('extra', { command: '/bin/sleep', args: ['1000'] });
      assert.equal((await info(client, 'extra'))?.state, 'running');
      await client.stopService('extra');

      // Space comes back: the next lines are written and the error clears.
      fs.rmSync(filler);
      fs.truncateSync(path.join(h.paths.logsDir, 'noisy.log'), 0);
      await waitFor(async () => (await info(client, 'quiet'))?.last_error === null, 20_000, 'quiet to log again');
      await waitFor(
        async () => (await client.serviceLogs('quiet', { lines: 5 })).some((l) => / out tick \d+/.test(l)),
        10_000,
        'new quiet lines',
      );
      await client.stopService('noisy');
      await client.stopService('quiet');
    } finally {
      client.close();
    }
  });

  test('the logs directory replaced by a regular file mid-run: a clear error, everything carries on, then recovers', async (t) => {
    const h = setUp(
      [
        // Small log_max_bytes: rotation (rename + reopen in the directory) happens within seconds.
        '[chatty]',
        `command = ${node}`,
        `args = [${fx('ticker.js')}, "10", "100"]`,
        'auto_start = true',
        'log_max_bytes = 4096',
        'log_max_files = 1',
        '',
        '[other]',
        `command = ${node}`,
        `args = [${fx('sleeper.js')}]`,
        'auto_start = true',
        '',
      ].join('\n'),
    );
    const pid = await startDaemon(h);
    const client = new DaemonClient({ env: h.env });
    try {
      await waitFor(
        async () => (await client.serviceLogs('chatty', { lines: 3 })).length === 3,
        10_000,
        'chatty to log',
      );
      const chattyPid = (await info(client, 'chatty'))?.pid;
      const moved = `${h.paths.logsDir}.moved`;
      fs.renameSync(h.paths.logsDir, moved);
      fs.writeFileSync(h.paths.logsDir, 'not a directory\n');

      await waitFor(
        () => /service chatty: cannot write its log .*(ENOTDIR|EEXIST)/.test(daemonLog(h)),
        20_000,
        'the report',
      );
      t.diagnostic(`daemon log: ${/.*service chatty: cannot write its log.*/.exec(daemonLog(h))?.[0] ?? ''}`);
      const chatty = await info(client, 'chatty');
      assert.equal(chatty?.state, 'running');
      assert.equal(chatty?.pid, chattyPid, 'the service was not disturbed');
      assert.match(chatty?.last_error ?? '', /cannot write its log .*chatty\.log: .*(ENOTDIR|EEXIST)/);
      assert.equal((await info(client, 'other'))?.state, 'running');
      assert.equal((await client.ping()).pid, pid);
      await client.startService('late', { command: '/bin/sleep', args: ['1000'] });
      assert.equal(
        (await info(client, 'late'))?.state,
        'running',
        'a service starts even though its log cannot be opened',
      );

      // Put the directory back. Between removing the file and the rename, the daemon may already have
      // made a fresh logs dir for its next line (it creates it on demand); clear that and try again.
      fs.rmSync(h.paths.logsDir);
      for (let attempt = 1; ; attempt++) {
        try {
          fs.renameSync(moved, h.paths.logsDir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt === 50) throw err;
          fs.rmSync(h.paths.logsDir, { recursive: true, force: true });
        }
      }
      await waitFor(async () => (await info(client, 'chatty'))?.last_error === null, 20_000, 'chatty to log again');
      await client.stopService('late');
    } finally {
      client.close();
    }
  });
});
