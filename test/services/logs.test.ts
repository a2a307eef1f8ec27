// Service output capture: every line of a flooding service, in order; follow; supervisor notes.

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { makeEnv, nodeService, texts, waitState, type TestEnv, adhoc } from './helpers.js';
import { waitFor } from '../helpers/env.js';

let env: TestEnv | null = null;
void afterEach(async () => {
  await env?.cleanup();
  env = null;
});

void describe('service logs', () => {
  void it('captures a 200,000-line flood completely and in order', async () => {
    env = makeEnv();
    const { manager } = env;
    const N = 200_000;
    // Large enough not to rotate: this test is about capture, rotation is the log module's.
    await manager.start(
      'flood',
      adhoc(nodeService('flood.js', [String(N)], { restart_on_failure: false, log_max_bytes: 256 * 1024 * 1024 })),
    );
    await waitState(manager, 'flood', 'stopped', 30_000);
    const out = await waitFor(
      async () => {
        const lines = texts(await manager.tail('flood', N + 100), 'out');
        return lines.length >= N ? lines : undefined;
      },
      20_000,
      'all lines in the log',
    );
    assert.equal(out.length, N);
    for (let i = 0; i < N; i++) {
      if (out[i] !== `line ${i + 1}`) assert.fail(`line ${i} is ${JSON.stringify(out[i])}, expected "line ${i + 1}"`);
    }
    const sys = texts(await manager.tail('flood', 5), 'sys');
    assert.ok(sys.includes('exited with code 0'), sys.join('\n'));
  });

  void it('follow streams new lines live, stderr too, and supervisor notes', async () => {
    env = makeEnv();
    const { manager } = env;
    await manager.start(
      'talk',
      adhoc({
        command: '/bin/sh',
        args: ['-c', 'sleep 0.3; echo hello; echo oops >&2; sleep 1000'],
      }),
    );
    const seen: string[] = [];
    const stop = manager.follow('talk', (line) => seen.push(line));
    await waitFor(() => seen.some((l) => / err oops$/.test(l)), 10_000, 'the stderr line');
    assert.ok(seen.some((l) => / out hello$/.test(l)));
    stop();
    await manager.stop('talk', false);
    const notes = texts(await manager.tail('talk', 20), 'sys');
    assert.ok(
      notes.some((n) => n.startsWith('started pid ')),
      notes.join('\n'),
    );
    assert.ok(
      notes.some((n) => n.startsWith('stopping pid ')),
      notes.join('\n'),
    );
    assert.ok(notes.includes('stopped'), notes.join('\n'));
  });
});
