// Clients that send garbage get an Error or a closed connection; the daemon goes on serving others.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { encode } from '../../src/wire/codec.js';
import { frame } from '../../src/wire/framing.js';
import { tempHome, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { rssKb } from '../helpers/proc.js';
import { startDaemon } from '../helpers/daemon.js';

let h: TempHome;
let daemonPid: number;
let good: DaemonClient;

async function hello(peer: RawPeer, token: string | null = null): Promise<Record<string, unknown>> {
  peer.send({ id: 0, type: 'Hello', protocol: PROTOCOL_VERSION, client: 'raw-test', token });
  const reply = await peer.waitFrame((f) => f['id'] === 0);
  assert.ok(reply);
  return reply;
}

before(async () => {
  h = tempHome();
  daemonPid = await startDaemon(h.env);
  good = new DaemonClient({ env: h.env });
  await good.ping();
});
after(async () => {
  good.close();
  await h.cleanup();
});

describe('hostile input', () => {
  test('garbage bytes: an Error frame (or a close), and the daemon serves others', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    peer.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    // "GET " read as a little-endian length is ~542 MB: over the maximum, so the connection closes.
    const err = await peer.waitFrame((f) => f['type'] === 'Error');
    assert.equal(err?.['code'], 'FRAME_TOO_LARGE');
    assert.ok(await peer.waitClosed());
    assert.equal((await good.ping()).pid, daemonPid);
  });

  test('a 4 GiB length prefix is refused without allocating it', async () => {
    const before = rssKb(daemonPid);
    const peers = await Promise.all(Array.from({ length: 20 }, () => RawPeer.connect(h.paths.socket)));
    for (const p of peers) p.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    for (const p of peers) {
      const err = await p.waitFrame((f) => f['type'] === 'Error');
      assert.equal(err?.['code'], 'FRAME_TOO_LARGE');
      assert.ok(await p.waitClosed());
    }
    await good.ping();
    // 20 x 4 GiB were announced; the daemon must not have grown by anything like one of them.
    assert.ok(rssKb(daemonPid) - before < 64 * 1024, `RSS grew from ${before} kB to ${rssKb(daemonPid)} kB`);
  });

  test('a frame just over 16 MiB is refused; one within is read', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    const header = Buffer.alloc(4);
    header.writeUInt32LE(16 * 1024 * 1024 + 1, 0);
    peer.write(header);
    assert.equal((await peer.waitFrame((f) => f['type'] === 'Error'))?.['code'], 'FRAME_TOO_LARGE');
  });

  test('a truncated frame followed by a close does not disturb the daemon', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    const full = frame(encode({ id: 1, type: 'Ping' }));
    peer.write(full.subarray(0, full.length - 2));
    // A round trip on another connection: the daemon has had its turn to read the partial frame.
    await good.ping();
    peer.close();
    assert.equal((await good.ping()).pid, daemonPid);
  });

  test('invalid MessagePack gets BAD_FRAME and the connection closes', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    peer.write(frame(Buffer.from([0xc1, 0xc1, 0xc1])));
    const err = await peer.waitFrame((f) => f['type'] === 'Error');
    assert.ok(err);
    assert.match(String(err['code']), /BAD_FRAME|BAD_REQUEST/);
    assert.ok(await peer.waitClosed());
  });

  test('wrong field types and unknown requests get an Error with their id; the connection stays usable', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    await hello(peer, fs.readFileSync(h.paths.tokenFile, 'utf8'));
    peer.send({ id: 11, type: 'Shutdown', graceful: 'please' });
    peer.send({ id: 12, type: 'LaunchMissiles' });
    peer.send({ id: 13, type: 'StopService', name: '../../etc/passwd', force: false });
    peer.send({ id: 14, type: 'Ping' });
    const e11 = await peer.waitFrame((f) => f['id'] === 11);
    const e12 = await peer.waitFrame((f) => f['id'] === 12);
    const e13 = await peer.waitFrame((f) => f['id'] === 13);
    const pong = await peer.waitFrame((f) => f['id'] === 14);
    assert.equal(e11?.['code'], 'BAD_REQUEST');
    assert.equal(e12?.['code'], 'UNKNOWN_REQUEST');
    assert.equal(e13?.['code'], 'BAD_SERVICE_NAME');
    assert.equal(pong?.['type'], 'Pong');
    peer.close();
  });

  test('a map without an id is answered on id 0 and closed', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    peer.send({ type: 'Ping' });
    const err = await peer.waitFrame((f) => f['type'] === 'Error');
    assert.equal(err?.['id'], 0);
    assert.ok(await peer.waitClosed());
  });

  test('without Hello only Ping is answered; a wrong token is anonymous', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    peer.send({ id: 1, type: 'Ping' });
    assert.equal((await peer.waitFrame((f) => f['id'] === 1))?.['type'], 'Pong');
    peer.send({ id: 2, type: 'Shutdown', graceful: true });
    assert.equal((await peer.waitFrame((f) => f['id'] === 2))?.['code'], 'UNAUTHORIZED');
    const welcome = await hello(peer, 'not-the-token');
    assert.equal(welcome['identity'], 'anonymous');
    peer.send({ id: 3, type: 'ListServices' });
    assert.equal((await peer.waitFrame((f) => f['id'] === 3))?.['code'], 'UNAUTHORIZED');
    peer.close();
    assert.equal((await good.ping()).pid, daemonPid);
  });

  test('a client of another protocol version gets VERSION_MISMATCH', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    peer.send({ id: 0, type: 'Hello', protocol: PROTOCOL_VERSION + 1, client: 'future' });
    const err = await peer.waitFrame((f) => f['id'] === 0);
    assert.equal(err?.['code'], 'VERSION_MISMATCH');
    assert.match(String(err?.['message']), /adi daemon start/);
  });

  test('random frames never take the daemon down', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    await hello(peer, fs.readFileSync(h.paths.tokenFile, 'utf8'));
    // Deterministic pseudo-random bodies, valid length prefixes.
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 300 && !peer.closed; i++) {
      const body = Buffer.from(Array.from({ length: 1 + (rnd() % 64) }, () => rnd() & 0xff));
      peer.write(frame(body));
    }
    // A round trip on another connection: the daemon has had its turn to read what was sent.
    await good.ping();
    peer.close();
    assert.equal((await good.ping()).pid, daemonPid);
  });
});
