// The order of checks before Hello: a silent connection is closed at the handshake deadline, a Ping
// meets that deadline as Hello does, and nothing but Ping (Cancel included) is answered before Hello.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tempHome, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { startDaemon } from '../helpers/daemon.js';

let h: TempHome;

before(async () => {
  h = tempHome({ ADI_DAEMON_HANDSHAKE_TIMEOUT_MS: '300' });
  await startDaemon(h.env);
});
after(async () => {
  await h.cleanup();
});

describe('before Hello', () => {
  test('a Ping-only connection outlives the handshake deadline that closes a silent one', async () => {
    const silent = await RawPeer.connect(h.paths.socket);
    const pinger = await RawPeer.connect(h.paths.socket);
    pinger.send({ id: 1, type: 'Ping' });
    assert.equal((await pinger.waitFrame((f) => f['id'] === 1))?.['type'], 'Pong');
    // Both connected at the same moment: once the silent one is cut off, the deadline has passed.
    assert.ok(await silent.waitClosed(5000), 'a connection that sends nothing is closed');
    pinger.send({ id: 2, type: 'Ping' });
    assert.equal((await pinger.waitFrame((f) => f['id'] === 2))?.['type'], 'Pong');
    assert.equal(pinger.closed, false);
    pinger.close();
  });

  test('Cancel before Hello is UNAUTHORIZED, like every request but Ping', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    peer.send({ id: 1, type: 'Cancel', target: 1 });
    const reply = await peer.waitFrame((f) => f['id'] === 1);
    assert.equal(reply?.['type'], 'Error');
    assert.equal(reply?.['code'], 'UNAUTHORIZED');
    peer.close();
  });
});
