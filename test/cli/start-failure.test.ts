// A daemon that cannot start is reported by `adi daemon start` at once, with its cause (the daemon's
// status pipe, src/client/spawn.ts), not after the 10 s wait for an answer.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { adi, daemonPids, home } from '../helpers/env.js';

describe('a failed daemon start', () => {
  test('is reported at once with its cause', async (t) => {
    const h = home();
    // Something that is not a socket where the socket must go: the daemon refuses to start.
    const socket = path.join(h.home, 'not-a-socket');
    fs.writeFileSync(socket, 'mine\n');
    const env = { ...h.env, ADI_DAEMON_SOCKET: socket };
    const began = Date.now();
    const r = await adi(['daemon', 'start'], env, { timeoutMs: 30_000 });
    t.diagnostic(`exit ${r.code} after ${Date.now() - began} ms: ${r.stderr.trim()}`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /The daemon could not start: .*not-a-socket exists and is not a socket/);
    assert.doesNotMatch(r.stderr, /did not answer within/, 'reported at once, not after the wait for an answer');
    assert.equal(fs.readFileSync(socket, 'utf8'), 'mine\n', 'the file is left as it was');
    assert.deepEqual(daemonPids(h.home), []);
  });
});
