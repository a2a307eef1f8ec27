// Random and mutated frames (fast-check) against a live daemon: raw bytes, random bodies behind valid
// length prefixes, byte-level mutations of valid requests, and structurally random requests. None may
// crash the daemon, leave an fd behind, or make it log an uncaught exception. Each case is one
// connection; after each the daemon's pid must still be alive.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { DaemonClient } from '../../src/client/client.js';
import { PROTOCOL_VERSION, REQUEST_TYPES } from '../../src/protocol/types.js';
import { encode, encodeFrame } from '../../src/wire/codec.js';
import { frame } from '../../src/wire/framing.js';
import { alive, tempHome, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { daemonLog, fdCount, settleAtMost, startDaemon } from './helpers.js';

const RUNS = 250;
let h: TempHome;
let pid: number;
let token: string;
let baseline: number;

before(async () => {
  // Short timeouts, so connections a case leaves mid-frame are cleaned up within the test.
  h = tempHome({ ADI_DAEMON_HANDSHAKE_TIMEOUT_MS: '1000', ADI_DAEMON_FRAME_TIMEOUT_MS: '1000' });
  pid = await startDaemon(h);
  token = fs.readFileSync(h.paths.tokenFile, 'utf8');
  const warm = new DaemonClient({ env: h.env });
  await warm.ping();
  warm.close();
  await new Promise((r) => setTimeout(r, 200));
  baseline = fdCount(pid);
});
after(async () => {
  await h.cleanup();
});

const MAX = 1 << 20;
const hello = (withToken: boolean): Buffer =>
  encodeFrame(
    { id: 0, type: 'Hello', protocol: PROTOCOL_VERSION, client: 'fuzz', token: withToken ? token : null },
    MAX,
  );

/** Send `chunks` on a fresh connection, give the daemon a moment to act on them, then hang up. */
async function sendCase(chunks: Buffer[]): Promise<void> {
  const peer = await RawPeer.connect(h.paths.socket);
  for (const c of chunks) peer.write(c);
  await peer.waitClosed(30);
  peer.close();
  assert.ok(alive(pid), 'the daemon is alive');
}

// Requests that are harmless even when a mutation leaves them valid (no Shutdown, no start of anything).
const TEMPLATES: Record<string, unknown>[] = [
  { id: 1, type: 'Ping' },
  { id: 2, type: 'ListServices' },
  { id: 3, type: 'ServiceLogs', name: 'nope', lines: 10, follow: true },
  { id: 4, type: 'StopService', name: 'nope', force: false },
  { id: 5, type: 'RestartService', name: 'nope' },
  { id: 6, type: 'Cancel', target: 3 },
  { id: 7, type: 'Reload' },
];

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant('length' as const), value: fc.nat({ max: 0xffffffff }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(bytes: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(bytes);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = 'at' in m ? m.at % b.length : 0;
    switch (m.kind) {
      case 'flip':
        b[at] = (b[at] as number) ^ (1 << m.bit);
        break;
      case 'set':
        b[at] = m.value;
        break;
      case 'cut':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'length':
        if (b.length >= 4) b.writeUInt32LE(m.value, 0);
        break;
    }
  }
  return b;
}

describe('fuzzing the daemon', () => {
  test('random bytes before the handshake', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 256 }), { minLength: 1, maxLength: 4 }), async (chunks) => {
        await sendCase(chunks.map((c) => Buffer.from(c)));
      }),
      { numRuns: RUNS },
    );
  });

  test('random bodies behind valid length prefixes, as anonymous and as admin', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.uint8Array({ maxLength: 128 }), { minLength: 1, maxLength: 6 }),
        async (admin, bodies) => {
          await sendCase([hello(admin), ...bodies.map((b) => frame(b))]);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('byte-level mutations of valid requests', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.tuple(fc.constantFrom(...TEMPLATES), fc.array(mutation, { minLength: 1, maxLength: 4 })), {
          minLength: 1,
          maxLength: 4,
        }),
        async (admin, cases) => {
          await sendCase([hello(admin), ...cases.map(([t, ms]) => mutate(encodeFrame(t, MAX), ms))]);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('structurally random requests (every type, random fields and values) from an anonymous client', async () => {
    const request = fc.record({
      id: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.constant(2 ** 40)),
      type: fc.oneof(fc.constantFrom(...REQUEST_TYPES), fc.string()),
      fields: fc.dictionary(
        fc.oneof(
          fc.constantFrom(
            'name',
            'config',
            'lines',
            'follow',
            'force',
            'command',
            'args',
            'target',
            'protocol',
            'token',
            'graceful',
            'reason',
          ),
          fc.string(),
        ),
        fc.anything({ maxDepth: 3 }),
        { maxKeys: 6 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(request, { minLength: 1, maxLength: 5 }), async (greet, reqs) => {
        const frames: Buffer[] = greet ? [hello(false)] : [];
        for (const r of reqs) {
          let body: Buffer;
          try {
            body = encode({ ...r.fields, id: r.id, type: r.type });
          } catch {
            continue; // not encodable (e.g. a symbol): nothing to send
          }
          frames.push(frame(body));
        }
        await sendCase(frames);
      }),
      { numRuns: RUNS },
    );
  });

  test('afterwards: the same daemon answers, logged no uncaught error, and holds no extra fds', async (t) => {
    const client = new DaemonClient({ env: h.env });
    try {
      assert.equal((await client.ping()).pid, pid);
    } finally {
      client.close();
    }
    const log = daemonLog(h);
    assert.doesNotMatch(log, /uncaught exception|unhandled rejection|INTERNAL|failed: /i);
    const fds = await settleAtMost(() => fdCount(pid), baseline + 2);
    t.diagnostic(`after ${4 * RUNS} fuzz connections: daemon fds ${baseline} -> ${fds}`);
    assert.ok(fds <= baseline + 2, `fds ${baseline} -> ${fds}`);
  });
});
