// `adi daemon services` with CPU and memory per service, through the real CLI and daemon: a service
// whose child spins and holds memory shows high CPU and that memory (so the whole process group is
// counted); an idle one shows about 0. Conditions are waited for, never timed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { listServices, serviceLog } from '../helpers/daemon.js';
import { ADI, FIXTURES, adi, waitFor } from '../helpers/env.js';
import { homeWithDaemon } from './helpers.js';

const HELD_MB = 64;

async function services(env: NodeJS.ProcessEnv): Promise<ServiceInfo[]> {
  const r = await adi(['daemon', 'services', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ServiceInfo[];
}

describe('adi daemon services: CPU and memory', () => {
  test('a busy process group shows high CPU and its memory; an idle service about 0', async () => {
    const h = await homeWithDaemon();
    let r = await adi(
      ['daemon', 'start', 'busy', '--', process.execPath, path.join(FIXTURES, 'busy.js'), 'parent', String(HELD_MB)],
      h.env,
    );
    assert.equal(r.code, 0, r.stderr);
    r = await adi(['daemon', 'start', 'idle', '--', process.execPath, path.join(FIXTURES, 'sleeper.js')], h.env);
    assert.equal(r.code, 0, r.stderr);
    // The spinning child says when it holds its memory.
    await waitFor(
      async () => (await serviceLog(h.env, 'busy')).includes('spinning'),
      30_000,
      'the busy child to start',
    );

    // Each listing is a sample; CPU is measured between two. Sample until the busy one is clearly busy
    // and the idle one is past its start-up (whose CPU the first, lifetime, figure includes). Sampled
    // over the socket (the busy child spins a core meanwhile); the CLI shows the figures below.
    let last: ServiceInfo[] = [];
    await waitFor(
      async () => {
        last = await listServices(h.env);
        const busy = last.find((s) => s.name === 'busy');
        const idle = last.find((s) => s.name === 'idle');
        return (busy?.cpu_percent ?? 0) >= 20 && idle?.cpu_percent !== null && (idle?.cpu_percent ?? 100) < 5;
      },
      60_000,
      'busy >= 20 % and idle < 5 % CPU',
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last listing: ${JSON.stringify(last)}`);
    });
    const busy = last.find((s) => s.name === 'busy') as ServiceInfo;
    const idle = last.find((s) => s.name === 'idle') as ServiceInfo;
    assert.equal(typeof busy.memory_bytes, 'number');
    assert.equal(typeof idle.memory_bytes, 'number');
    // Two node processes plus the held memory against one node process: only a group sum gets there.
    assert.ok(
      (busy.memory_bytes as number) > (idle.memory_bytes as number) + HELD_MB * 1024 * 1024 * 0.9,
      `busy ${busy.memory_bytes} bytes vs idle ${idle.memory_bytes} bytes`,
    );

    // The table has the columns, with figures in them.
    const table = await adi(['daemon', 'services'], h.env);
    assert.match(table.stdout, /^NAME\s+STATE\s+PID\s+CPU%\s+MEM\s+UPTIME/m);
    assert.match(table.stdout, /^busy\s+running\s+\d+\s+\d+\.\d\s+\d+(\.\d)?M\s/m);

    // A stopped service has no figures (null, shown as '-').
    r = await adi(['daemon', 'stop', 'busy'], h.env);
    assert.equal(r.code, 0, r.stderr);
    const after = (await services(h.env)).find((s) => s.name === 'busy') as ServiceInfo;
    assert.equal(after.cpu_percent, null);
    assert.equal(after.memory_bytes, null);
    assert.match((await adi(['daemon', 'services'], h.env)).stdout, /^busy\s+stopped\s+-\s+-\s+-\s/m);
  });

  test('--watch prints one listing per interval (one JSON array per line with --json); top is its alias', async () => {
    const h = await homeWithDaemon();
    let r = await adi(['daemon', 'start', 'idle', '--', process.execPath, path.join(FIXTURES, 'sleeper.js')], h.env);
    assert.equal(r.code, 0, r.stderr);
    r = await adi(['daemon', 'services', '--watch', '--json', '--interval', '0.2', '--count', '2'], h.env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const line of lines) {
      const list = JSON.parse(line) as ServiceInfo[];
      assert.equal(list[0]?.name, 'idle');
      assert.equal(typeof list[0]?.memory_bytes, 'number');
    }
    // Not a terminal: timestamped tables one after the other, no escape sequences.
    r = await adi(['daemon', 'top', '--interval', '0.2', '--count', '2'], h.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.match(/^# \d{4}-\d\d-\d\dT/gm)?.length, 2, r.stdout);
    assert.equal(r.stdout.match(/^NAME\s+STATE/gm)?.length, 2);
    assert.ok(!r.stdout.includes('\x1b'));

    // Ctrl-C ends a watch cleanly (exit 0), whenever it comes.
    const watch = spawn(process.execPath, [ADI, 'daemon', 'top', '--interval', '0.2'], {
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let shown = '';
    watch.stdout.setEncoding('utf8').on('data', (d: string) => (shown += d));
    const exited = new Promise<number | null>((resolve) => watch.once('exit', (code) => resolve(code)));
    await waitFor(() => (shown.match(/^NAME/gm)?.length ?? 0) >= 2, 30_000, 'two refreshes');
    watch.kill('SIGINT');
    assert.equal(await exited, 0);

    r = await adi(['daemon', 'services', '--count', '2'], h.env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--watch/);
    r = await adi(['daemon', 'services', '--watch', '--interval', '0'], h.env);
    assert.equal(r.code, 2);
  });
});
