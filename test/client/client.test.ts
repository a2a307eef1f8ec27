import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { AdiError } from '../../src/core/errors.js';
import { alive, daemonPids, home, waitFor } from '../helpers/env.js';

const isCode = (code: string) => (err: unknown) => err instanceof AdiError && err.code === code;

describe('DaemonClient', () => {
  test('isRunning is a real ping: false with no daemon, even with a stale socket file', async () => {
    const h = home();
    const client = new DaemonClient({ env: h.env });
    assert.equal(await client.isRunning(), false);
    fs.mkdirSync(h.paths.dataDir, { recursive: true });
    const stale = net.createServer().listen(h.paths.socket.address);
    await new Promise((r) => stale.once('listening', r));
    // Closing the server leaves no file behind in Node, so make a plain file to stand for a stale one.
    stale.close();
    fs.writeFileSync(h.paths.socket.address, '');
    assert.equal(await client.isRunning(), false);
    await assert.rejects(client.ping(), isCode('DAEMON_NOT_RUNNING'));
    fs.rmSync(h.paths.socket.address);
  });

  test('ensureRunning starts the daemon detached and waits until it answers', async () => {
    const h = home();
    const client = new DaemonClient({ env: h.env });
    const pong = await client.ensureRunning();
    assert.ok(alive(pong.pid));
    assert.deepEqual(daemonPids(h.home), [pong.pid]);
    assert.equal(await client.isRunning(), true);
    // A second ensureRunning does not start another.
    assert.equal((await client.ensureRunning()).pid, pong.pid);
    client.close();
  });

  test('many calls in flight on one connection are all answered', async () => {
    const h = home();
    const client = new DaemonClient({ env: h.env });
    await client.ensureRunning();
    const pongs = await Promise.all(Array.from({ length: 2000 }, () => client.ping()));
    assert.equal(new Set(pongs.map((p) => p.pid)).size, 1);
    client.close();
  });

  test('remote errors keep their code; unknown services are SERVICE_NOT_FOUND or NOT_IMPLEMENTED', async () => {
    const h = home();
    const client = new DaemonClient({ env: h.env });
    await client.ensureRunning();
    await assert.rejects(
      client.stopService('nope'),
      (err: unknown) => err instanceof AdiError && /SERVICE_NOT_FOUND|NOT_IMPLEMENTED/.test(err.code),
    );
    await assert.rejects(client.stopService('../etc'), isCode('BAD_SERVICE_NAME'));
    client.close();
  });

  test('a hung daemon never hangs the client: calls time out', async () => {
    const h = home();
    // A fake daemon that accepts and then says nothing.
    fs.mkdirSync(h.paths.dataDir, { recursive: true });
    const accepted: net.Socket[] = [];
    const silent = net.createServer((s) => {
      accepted.push(s);
      s.on('data', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(h.paths.socket.address, r));
    const client = new DaemonClient({ env: h.env, timeoutMs: 300, connectTimeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(client.ping(), isCode('TIMEOUT'));
    assert.ok(Date.now() - started < 5000);
    client.close();
    for (const s of accepted) s.destroy();
    silent.close();
  });

  test('the client reconnects after the daemon restarts', async () => {
    const h = home();
    const client = new DaemonClient({ env: h.env });
    const first = await client.ensureRunning();
    await client.shutdown(true);
    await waitFor(() => !alive(first.pid), 10_000, 'daemon exit');
    await assert.rejects(client.ping(), isCode('DAEMON_NOT_RUNNING'));
    const second = await client.ensureRunning();
    assert.notEqual(second.pid, first.pid);
    assert.equal((await client.ping()).pid, second.pid);
    client.close();
  });
});
