// Slow clients (a byte a second; a frame header followed by silence; connect and say nothing) do not
// block anyone else and are cut off by the handshake and frame timeouts. The daemon runs with short
// timeouts through ADI_DAEMON_HANDSHAKE_TIMEOUT_MS / ADI_DAEMON_FRAME_TIMEOUT_MS (src/server/limits.ts).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { encodeFrame } from '../../src/wire/codec.js';
import { tempHome, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { daemonLog, fdCount, settleAtMost, startDaemon } from './helpers.js';

const TIMEOUT_MS = 2000;
let h: TempHome;
let pid: number;
let good: DaemonClient;

before(async () => {
  h = tempHome({
    ADI_DAEMON_HANDSHAKE_TIMEOUT_MS: String(TIMEOUT_MS),
    ADI_DAEMON_FRAME_TIMEOUT_MS: String(TIMEOUT_MS),
  });
  pid = await startDaemon(h);
  good = new DaemonClient({ env: h.env });
  await good.ping();
});
after(async () => {
  good.close();
  await h.cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function greeted(): Promise<RawPeer> {
  const peer = await RawPeer.connect(h.paths.socket);
  peer.send({
    id: 0,
    type: 'Hello',
    protocol: PROTOCOL_VERSION,
    client: 'slow',
    token: fs.readFileSync(h.paths.tokenFile, 'utf8'),
  });
  assert.equal((await peer.waitFrame((f) => f['id'] === 0))?.['type'], 'Welcome');
  return peer;
}

/** Feed `bytes` one a second until the peer is closed or the bytes run out. */
async function trickle(peer: RawPeer, bytes: Buffer): Promise<number> {
  let sent = 0;
  for (const b of bytes) {
    if (peer.closed) break;
    peer.write(Buffer.from([b]));
    sent++;
    await sleep(1000);
  }
  return sent;
}

describe('slow clients', () => {
  test('silent, byte-a-second and header-then-silence clients are timed out; others are served meanwhile', async (t) => {
    const fdsBefore = fdCount(pid);
    const began = Date.now();
    // 20 that connect and say nothing (handshake timeout).
    const silent = await Promise.all(Array.from({ length: 20 }, () => RawPeer.connect(h.paths.socket)));
    // 20 that send their Hello a byte a second (handshake timeout: the Hello never completes in time).
    const helloBytes = encodeFrame(
      { id: 0, type: 'Hello', protocol: PROTOCOL_VERSION, client: 'trickle', token: null },
      1 << 20,
    );
    const tricklers = await Promise.all(Array.from({ length: 20 }, () => RawPeer.connect(h.paths.socket)));
    const trickling = tricklers.map((p) => trickle(p, helloBytes));
    // 20 greeted ones that send a Ping a byte a second (frame timeout), and 20 that send only a header.
    const pingBytes = encodeFrame({ id: 5, type: 'Ping' }, 1 << 20);
    const slowFrames = await Promise.all(Array.from({ length: 20 }, () => greeted()));
    const slowFraming = slowFrames.map((p) => trickle(p, Buffer.concat([pingBytes, pingBytes])));
    const headers = await Promise.all(Array.from({ length: 20 }, () => greeted()));
    for (const p of headers) p.write(Buffer.from([100, 0, 0, 0]));

    // Meanwhile a normal client is served as usual: 200 pings and a list, done while all 80 are open.
    const served = Date.now();
    for (let i = 0; i < 200; i++) await good.ping();
    await good.listServices();
    const servedMs = Date.now() - served;
    const slowOnes = [...silent, ...tricklers, ...slowFrames, ...headers];
    const stillOpen = slowOnes.filter((p) => !p.closed).length;
    t.diagnostic(
      `200 pings for a normal client in ${servedMs} ms while ${stillOpen} of 80 slow clients were connected`,
    );
    assert.equal(stillOpen, 80, 'the normal client was served before any slow client timed out (none blocked it)');

    // All are cut off: by the timeout, long before a byte-a-second frame could complete.
    await Promise.all(slowOnes.map((p) => p.waitClosed(TIMEOUT_MS + 15_000)));
    const open = {
      silent: silent.filter((p) => !p.closed).length,
      tricklers: tricklers.filter((p) => !p.closed).length,
      slowFrames: slowFrames.filter((p) => !p.closed).length,
      headers: headers.filter((p) => !p.closed).length,
    };
    assert.deepEqual(open, { silent: 0, tricklers: 0, slowFrames: 0, headers: 0 }, 'all closed by the daemon');
    const closedMs = Date.now() - began;
    const sent = await Promise.all([...trickling, ...slowFraming]);
    assert.ok(Math.max(...sent) < helloBytes.length, `no trickled frame completed (bytes sent: ${Math.max(...sent)})`);
    assert.ok(
      slowFrames.every((p) => !p.frames.some((f) => f['type'] === 'Pong')),
      'no Pong for a trickled Ping',
    );
    t.diagnostic(`80 slow clients all closed ${closedMs} ms after connecting (timeouts ${TIMEOUT_MS} ms)`);
    assert.ok(closedMs >= TIMEOUT_MS - 100, 'not closed before the timeout');

    const log = daemonLog(h);
    assert.match(log, /closing a connection \(anonymous\): no Hello within the handshake timeout/);
    assert.match(log, /closing a connection \(admin\): a frame did not complete within the frame timeout/);
    const fdsAfter = await settleAtMost(() => fdCount(pid), fdsBefore + 2);
    t.diagnostic(`daemon fds ${fdsBefore} -> ${fdsAfter}`);
    assert.ok(fdsAfter <= fdsBefore + 2, `fds back: ${fdsBefore} -> ${fdsAfter}`);
    assert.equal((await good.ping()).pid, pid);
  });
});
