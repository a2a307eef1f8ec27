// Clients that leave in the middle of a log follow stream leak nothing: after rounds of followers that
// hang up abruptly, cancel, or stop reading and then hang up, the daemon's fd count is back at its
// baseline and its RSS has not grown with the number of followers. Measured from outside (/proc).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { FIXTURES, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { fdCount, rssKb, settleAtMost, startDaemon } from './helpers.js';

let h: TempHome;
let pid: number;
let token: string;

before(async () => {
  h = tempHome();
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  // 200 lines a second, 200 bytes each: every follower always has something in flight.
  fs.writeFileSync(
    h.paths.servicesFile,
    `[chatty]\ncommand = ${JSON.stringify(process.execPath)}\nargs = [${JSON.stringify(path.join(FIXTURES, 'ticker.js'))}, "5", "200"]\nauto_start = true\n`,
  );
  pid = await startDaemon(h);
  token = fs.readFileSync(h.paths.tokenFile, 'utf8');
  const c = new DaemonClient({ env: h.env });
  await waitFor(async () => (await c.serviceLogs('chatty', { lines: 5 })).length === 5, 10_000, 'chatty to log');
  c.close();
});
after(async () => {
  await h.cleanup();
});

async function follower(id: number): Promise<RawPeer> {
  const peer = await RawPeer.connect(h.paths.socket);
  peer.send({ id: 0, type: 'Hello', protocol: PROTOCOL_VERSION, client: `follower-${id}`, token });
  peer.send({ id: 1, type: 'ServiceLogs', name: 'chatty', lines: 50, follow: true });
  return peer;
}

/** Lines received in LogBatch frames (each run is [time, stream, count]). */
function linesIn(frames: Array<Record<string, unknown>>): number {
  let n = 0;
  for (const f of frames) {
    if (f['type'] !== 'LogBatch') continue;
    const runs = f['runs'] as number[];
    for (let i = 2; i < runs.length; i += 3) n += runs[i] as number;
  }
  return n;
}

/** One round: `n` followers, each gets live lines, then leaves one of three ways. */
async function round(n: number): Promise<void> {
  const peers = await Promise.all(Array.from({ length: n }, (_, i) => follower(i)));
  // Past the 50 old lines: live lines are flowing to every follower.
  await Promise.all(peers.map((p) => p.waitFrame(() => linesIn(p.frames) > 55, 20_000)));
  await Promise.all(
    peers.map(async (p, i) => {
      switch (i % 3) {
        case 0: // hang up mid-stream
          p.close();
          break;
        case 1: // cancel properly, then hang up
          p.send({ id: 2, type: 'Cancel', target: 1 });
          await p.waitFrame((f) => f['type'] === 'StreamEnd', 10_000);
          p.close();
          break;
        default: // stop reading (the daemon's buffer for it fills), then hang up
          p.socket.pause();
          await new Promise((r) => setTimeout(r, 300));
          p.close();
      }
    }),
  );
}

describe('log follow', () => {
  test('followers that leave mid-stream leave no fd and no memory behind', async (t) => {
    // A first round warms up whatever is allocated once (buffers, the V8 heap's working size).
    await round(30);
    await settleAtMost(() => fdCount(pid), 0, 1000);
    const fdBase = fdCount(pid);
    const rssBase = rssKb(pid);
    const ROUNDS = 10;
    const PER_ROUND = 50;
    const perRound: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await round(PER_ROUND);
      perRound.push(Math.round(rssKb(pid) / 1024));
    }
    t.diagnostic(`RSS after each round (MiB): ${perRound.join(' ')}`);
    const fds = await settleAtMost(() => fdCount(pid), fdBase + 2);
    await new Promise((r) => setTimeout(r, 1000));
    const rss = rssKb(pid);
    t.diagnostic(
      `${ROUNDS * PER_ROUND} followers left mid-stream: daemon fds ${fdBase} -> ${fds}; RSS ${Math.round(rssBase / 1024)} -> ${Math.round(rss / 1024)} MiB`,
    );
    assert.ok(fds <= fdBase + 2, `fds ${fdBase} -> ${fds}`);
    // Generous bound: a leaked follower per connection (500 of them, each holding a connection and
    // its queued lines) would keep growing; V8 may keep some heap it does not return to the OS.
    assert.ok(rss - rssBase < 48 * 1024, `RSS grew by ${rss - rssBase} KiB`);
    // And it levels off: the second half of the rounds adds little (a leak grows with every round).
    const half = (perRound[ROUNDS - 1] ?? 0) - (perRound[ROUNDS / 2 - 1] ?? 0);
    assert.ok(half < 16, `RSS still grew by ${half} MiB over the last ${ROUNDS / 2} rounds`);
    const client = new DaemonClient({ env: h.env });
    try {
      assert.equal((await client.ping()).pid, pid);
      // The service it followed is undisturbed and still writing.
      assert.equal((await client.listServices()).find((s) => s.name === 'chatty')?.state, 'running');
    } finally {
      client.close();
    }
  });
});
