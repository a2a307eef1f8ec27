// A Run whose output passes its bound gets OUTPUT_TOO_LARGE (its process group killed) and the daemon
// is fine: it neither buffers without bound nor dies, and answers the next request.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { AdiError } from '../../src/core/errors.js';
import { alive, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { rssKb } from '../helpers/proc.js';
import { startDaemon } from '../helpers/daemon.js';

let h: TempHome;
let client: DaemonClient;
let pid: number;

before(async () => {
  h = tempHome();
  pid = await startDaemon(h.env);
  client = new DaemonClient({ env: h.env, timeoutMs: 60_000 });
});
after(async () => {
  client.close();
  await h.cleanup();
});

describe('Run output bounds', () => {
  test('output past max_output_bytes: OUTPUT_TOO_LARGE, and the daemon carries on', async () => {
    await assert.rejects(
      client.run('/bin/sh', ['-c', 'head -c 1000000 /dev/zero; sleep 100'], { maxOutputBytes: 64 * 1024 }),
      (err: unknown) => err instanceof AdiError && err.code === 'OUTPUT_TOO_LARGE',
    );
    assert.equal((await client.ping()).pid, pid);
  });

  test("an endless writer against the daemon's own 16 MiB bound: refused, memory bounded, no process left", async () => {
    const before = rssKb(pid);
    const began = Date.now();
    await assert.rejects(
      client.run('/bin/sh', ['-c', 'echo $$ > "$1"; exec cat /dev/zero', 'sh', `${h.home}/writer.pid`]),
      (err: unknown) => err instanceof AdiError && err.code === 'OUTPUT_TOO_LARGE' && /16777216/.test(err.message),
    );
    const grown = rssKb(pid) - before;
    // The bound is 16 MiB of output held at once; allow for the copy and the heap around it.
    assert.ok(grown < 128 * 1024, `RSS grew by ${grown} KiB`);
    assert.equal((await client.ping()).pid, pid);
    const writer = Number(fs.readFileSync(`${h.home}/writer.pid`, 'utf8'));
    // SIGKILL was sent to its group before the answer; the kernel may take a moment to end it.
    await waitFor(() => !alive(writer), 5000, 'the writer to be killed');
    assert.ok(Date.now() - began < 60_000);
  });
});
