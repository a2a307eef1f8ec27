// Descriptor exhaustion: a daemon started under `ulimit -n 128`. Services are started until the
// daemon refuses more (clearly, saying why), then 300 connections that never say Hello are opened.
// The admin can still connect and act: status, services, stopping a service, stopping the daemon.
// Without the reserve, Node accepts and at once closes every new connection once the fd table is
// full, and the admin gets CONNECTION_CLOSED like everyone else.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { ADI, adi, daemonPids, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { fdCount, killAll, markedProcesses } from './helpers.js';

const LIMIT = 128;
/** What the daemon keeps free for the admin at this limit (fd-budget.ts: limit / 16, at least 16). */
const RESERVE = 16;
const homes: TempHome[] = [];
const sockets: net.Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const h of homes) killAll(markedProcesses(h.home).map((p) => p.pid));
  await Promise.all(homes.map((h) => h.cleanup()));
});

describe('descriptor exhaustion', () => {
  test(`under ulimit -n ${LIMIT}: services and idle clients take what they may, and an admin can still connect`, async (t) => {
    // Idle clients are not cut off by the handshake timeout during the test: only the reserve frees room.
    const h = tempHome({ ADI_DAEMON_HANDSHAKE_TIMEOUT_MS: '600000' });
    homes.push(h);
    // The daemon inherits the limit of the `adi daemon start` that spawns it.
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        '/bin/sh',
        ['-c', `ulimit -n ${LIMIT} && exec "$0" "$1" daemon start`, process.execPath, ADI],
        { env: h.env, stdio: 'ignore' },
      );
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`adi daemon start exited with ${code}`))));
    });
    const daemon = daemonPids(h.home)[0] as number;
    assert.ok(daemon > 0);

    // Services until the daemon refuses: each run keeps a few descriptors (pipes, log file).
    const client = new DaemonClient({ env: h.env });
    const refusals: string[] = [];
    let running = 0;
    for (let i = 0; i < 60; i++) {
      try {
        await client.startService(`s${i}`, { command: '/bin/sleep', args: ['1000'], stop_timeout: 1 });
        running++;
      } catch (err) {
        refusals.push(err instanceof Error ? err.message : String(err));
      }
    }
    client.close();
    t.diagnostic(`${running} services started, ${refusals.length} refused; daemon fds ${fdCount(daemon)} of ${LIMIT}`);
    assert.ok(refusals.length > 0, 'some starts are refused');
    assert.match(refusals[0] ?? '', /keeps \d+ free so that an admin can always connect/);

    // 300 clients that connect and never say anything.
    const fdsBefore = fdCount(daemon);
    let closedByDaemon = 0;
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const s = net.connect(h.paths.socket.address);
      sockets.push(s);
      // Reading, so that a close by the daemon is seen.
      s.resume();
      s.on('error', () => refused++);
      s.on('close', () => closedByDaemon++);
    }
    // The daemon can hold at most LIMIT - fdsBefore of them (one less: libuv keeps one descriptor of
    // its own for a full table): the others it must close (or never accept).
    const mustClose = 300 - (LIMIT - fdsBefore) - 1;
    await waitFor(
      () => closedByDaemon + refused >= mustClose,
      30_000,
      `the daemon to close at least ${mustClose} of them`,
    );
    const held = fdCount(daemon);
    t.diagnostic(
      `300 idle connections: ${refused} refused at connect, ${closedByDaemon} closed by the daemon; daemon fds ${held} of ${LIMIT}`,
    );
    // The reserve stays free: the daemon made room by closing the oldest idle connections. (Without
    // it the table fills to the limit and Node closes every new connection, the admin's included.)
    assert.ok(held <= LIMIT - RESERVE, `daemon fds ${held}: the reserve of ${RESERVE} is not free`);

    // The admin still gets in, and can act, while the idle clients that are left stay connected.
    for (let i = 0; i < 5; i++) {
      const status = await adi(['daemon', 'status'], h.env);
      assert.equal(status.code, 0, `status: ${status.stdout}${status.stderr}`);
    }
    const services = await adi(['daemon', 'services', '--json'], h.env);
    assert.equal(services.code, 0, `services: ${services.stderr}`);
    assert.ok((JSON.parse(services.stdout) as unknown[]).length >= running);
    const stop = await adi(['daemon', 'stop', 's0'], h.env);
    assert.equal(stop.code, 0, `stop s0: ${stop.stderr}`);
    assert.ok(fdCount(daemon) <= LIMIT);
    const down = await adi(['daemon', 'stop'], h.env, { timeoutMs: 60_000 });
    assert.equal(down.code, 0, `daemon stop: ${down.stderr}`);
    await waitFor(() => daemonPids(h.home).length === 0, 15_000, 'the daemon to exit');
  });
});
