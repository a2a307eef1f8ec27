// A full data disk: the whole data dir on a small tmpfs (needs root to mount; skipped with the reason
// otherwise), filled to the last byte. After a kill -9, `adi daemon start` succeeds at once (the
// daemon frees its disk reserve for the lock, token and pid files) and supervises the services,
// with the degradation shown in `status` and `services`. Without a reserve, `adi daemon start`
// fails at once with the cause, not after its whole timeout, and leaves no temporary file behind.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { adi, alive, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { killAll, markedProcesses, startDaemon } from './helpers.js';

const homes: TempHome[] = [];
const mounts: string[] = [];
after(async () => {
  for (const h of homes) {
    killAll(markedProcesses(h.home).map((p) => p.pid));
    fs.rmSync(path.join(path.dirname(h.paths.dataDir), 'fill'), { force: true });
  }
  await Promise.all(homes.map((h) => h.cleanup().catch(() => undefined)));
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m]);
    } catch {
      // already gone
    }
  }
});

/** A HOME whose data dir (~/.local/share/adi) is on its own 5 MiB tmpfs; null when it cannot be mounted. */
function onSmallDisk(services: string): TempHome | null {
  const h = tempHome();
  homes.push(h);
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  fs.writeFileSync(h.paths.servicesFile, services);
  const share = path.dirname(h.paths.dataDir);
  fs.mkdirSync(share, { recursive: true, mode: 0o700 });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=5m,mode=0700', 'tmpfs', share], { stdio: 'ignore' });
  } catch {
    return null;
  }
  mounts.push(share);
  return h;
}

/** Fill the filesystem of `dir` to the last byte; returns the bytes written. */
function fill(dir: string): number {
  const fd = fs.openSync(path.join(dir, 'fill'), 'a');
  let total = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          const n = fs.writeSync(fd, chunk);
          total += n;
          if (n < size) break;
        } catch {
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return total;
}

const SERVICES = [
  '[one]',
  'command = "/bin/sleep"',
  'args = ["1000"]',
  'auto_start = true',
  '',
  '[two]',
  'command = "/bin/sleep"',
  'args = ["1001"]',
  'auto_start = true',
  '',
  // Writes a line every 20 ms: its log degrades while the disk is full.
  '[talker]',
  'command = "/bin/sh"',
  'args = ["-c", "while :; do echo tick; sleep 0.02; done"]',
  'auto_start = true',
  '',
].join('\n');

function tempFiles(h: TempHome): string[] {
  return fs.readdirSync(h.paths.dataDir).filter((f) => /\.tmp$|\.stale-\d+$|^\.daemon\.(token|pid)\./.test(f));
}

describe('a full data disk', () => {
  test('after kill -9, `adi daemon start` on a full disk succeeds at once and supervises; status and services say what is degraded', async (t) => {
    const h = onSmallDisk(SERVICES);
    if (h === null) {
      t.skip('cannot mount a tmpfs here (not root?): the full-disk start is not tested');
      return;
    }
    const first = await startDaemon(h);
    const client = new DaemonClient({ env: h.env });
    await waitFor(
      async () => (await client.listServices()).every((s) => s.state === 'running'),
      15_000,
      'services running',
    );
    client.close();
    await waitFor(
      () =>
        fs.existsSync(path.join(h.paths.dataDir, 'disk-reserve')) &&
        fs.statSync(path.join(h.paths.dataDir, 'disk-reserve')).size === 256 * 1024,
      10_000,
      'the daemon to make its disk reserve',
    );

    const filled = fill(path.dirname(h.paths.dataDir));
    t.diagnostic(`filled the 5 MiB tmpfs with ${filled} bytes`);
    process.kill(first, 'SIGKILL');
    await waitFor(() => !alive(first), 5000, 'the daemon to die');

    const began = Date.now();
    const r = await adi(['daemon', 'start'], h.env, { timeoutMs: 30_000 });
    const took = Date.now() - began;
    t.diagnostic(`adi daemon start on the full disk: exit ${r.code} after ${took} ms`);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stderr, /did not answer within/);

    const second = new DaemonClient({ env: h.env });
    let list: ServiceInfo[] = [];
    await waitFor(
      async () => {
        list = await second.listServices();
        return list.length === 3 && list.every((s) => s.state === 'running' && s.pid !== null && alive(s.pid));
      },
      20_000,
      'the services to run again under the new daemon',
    );
    // Supervised: a killed service is restarted.
    const one = list.find((s) => s.name === 'one') as ServiceInfo;
    process.kill(one.pid as number, 'SIGKILL');
    await waitFor(
      async () => {
        const now = (await second.listServices()).find((s) => s.name === 'one');
        return now?.state === 'running' && now.pid !== one.pid;
      },
      15_000,
      'one restarted',
    );
    second.close();

    const status = await adi(['daemon', 'status', '--json'], h.env);
    const problems = (JSON.parse(status.stdout) as { problems: string[] }).problems;
    t.diagnostic(`status problems: ${JSON.stringify(problems)}`);
    assert.match(problems.join('\n'), /is full: the daemon freed its 256 KiB disk reserve/);
    const services = await adi(['daemon', 'services'], h.env);
    assert.equal(services.code, 0);
    assert.match(services.stderr, /degraded: .*is full/);
    assert.deepEqual(tempFiles(h), [], 'no temporary file left');

    // Space returns: a clean stop works and nothing of the data dir's services is left.
    fs.rmSync(path.join(path.dirname(h.paths.dataDir), 'fill'));
    const stop = await adi(['daemon', 'stop'], h.env, { timeoutMs: 60_000 });
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(markedProcesses(h.home), []);
  });

  test('a start on a full disk with no reserve left fails at once with the cause, and leaves no temporary file', async (t) => {
    const h = onSmallDisk(SERVICES);
    if (h === null) {
      t.skip('cannot mount a tmpfs here (not root?): the full-disk start is not tested');
      return;
    }
    fs.mkdirSync(h.paths.dataDir, { recursive: true, mode: 0o700 });
    fill(path.dirname(h.paths.dataDir));
    const began = Date.now();
    const r = await adi(['daemon', 'start'], h.env, { timeoutMs: 30_000 });
    const took = Date.now() - began;
    t.diagnostic(`adi daemon start with no room and no reserve: exit ${r.code} after ${took} ms: ${r.stderr.trim()}`);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /The daemon could not start: cannot write .*daemon\.lock: the disk holding .* is full \(ENOSPC\)/,
    );
    assert.doesNotMatch(r.stderr, /did not answer within/, 'reported at once, not after the timeout');
    assert.deepEqual(tempFiles(h), [], 'no temporary file left by the failed attempt');

    // Room again: the next start works and makes its reserve.
    fs.rmSync(path.join(path.dirname(h.paths.dataDir), 'fill'));
    await startDaemon(h);
    // Made once the services are started (after the daemon first answers).
    await waitFor(
      () =>
        fs.existsSync(path.join(h.paths.dataDir, 'disk-reserve')) &&
        fs.statSync(path.join(h.paths.dataDir, 'disk-reserve')).size === 256 * 1024,
      10_000,
      'the disk reserve',
    );
    assert.equal((await adi(['daemon', 'stop'], h.env, { timeoutMs: 60_000 })).code, 0);
  });
});
