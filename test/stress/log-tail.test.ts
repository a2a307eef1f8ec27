// Large tails stream: `adi daemon logs NAME -n 1000000` of a service that wrote 1.2 million lines
// returns exactly the last million, as a stream of frames none larger than the frame limit, while the
// daemon's RSS stays within 100 MB of what it was before. The time of `-n 100000` is recorded (the
// bench holds it to its target; a test on a shared machine does not).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_MAX_FRAME, PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { ADI, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { rssKb, startDaemon } from './helpers.js';

const LINES = 1_200_000;
let h: TempHome;
let pid: number;

before(async () => {
  h = tempHome();
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  // The default rotation (10 MiB, 4 kept): the million lines span several segments.
  fs.writeFileSync(
    h.paths.servicesFile,
    `[big]\ncommand = "seq"\nargs = ["1", "${LINES}"]\nauto_start = true\nrestart_on_failure = false\n`,
  );
  pid = await startDaemon(h);
  await waitFor(
    () => {
      try {
        return fs.readFileSync(`${h.paths.logsDir}/big.log`).includes(`\n${LINES}\n`);
      } catch {
        return false;
      }
    },
    60_000,
    'seq to finish',
  );
});
after(async () => {
  await h.cleanup();
});

/** Run the CLI, counting its output lines without keeping them; samples the daemon's RSS meanwhile. */
function logsCommand(
  args: string[],
): Promise<{ code: number | null; lines: number; first: string; last: string; ms: number; maxRssKb: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [ADI, 'daemon', 'logs', ...args], {
      env: h.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let lines = 0;
    let first = '';
    let tail = '';
    let maxRssKb = rssKb(pid);
    const sampler = setInterval(() => (maxRssKb = Math.max(maxRssKb, rssKb(pid))), 10);
    child.stdout.on('data', (d: Buffer) => {
      if (first === '') first = d.toString('latin1', 0, d.indexOf(10));
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
      tail = (tail + d.toString('latin1')).slice(-200);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sampler);
      const last = tail.trimEnd().split('\n').pop() ?? '';
      resolve({ code, lines, first, last, ms: Date.now() - started, maxRssKb });
    });
  });
}

describe('large log tails', () => {
  test('-n 1000000 returns the last million lines, streamed, with bounded daemon memory', async (t) => {
    const before = rssKb(pid);
    const r = await logsCommand(['big', '-n', '1000000']);
    assert.equal(r.code, 0);
    const growthMb = (r.maxRssKb - before) / 1024;
    t.diagnostic(
      `-n 1000000: ${r.lines} lines in ${r.ms} ms; daemon RSS ${Math.round(before / 1024)} MB, at most ${Math.round(r.maxRssKb / 1024)} MB during it (+${growthMb.toFixed(1)} MB)`,
    );
    // Notes ("started pid ...", "exited with code 0") fall after the first of the million and are shown too.
    assert.ok(r.lines >= 1_000_000 && r.lines <= 1_000_003, `${r.lines} lines`);
    assert.match(r.first, / 200001$/);
    assert.match(r.last, /exited with code 0$/);
    assert.ok(growthMb < 100, `daemon RSS grew by ${growthMb.toFixed(1)} MB`);

    const small = await logsCommand(['big', '-n', '100000']);
    assert.equal(small.code, 0);
    assert.match(small.first, / 1100001$/);
    t.diagnostic(`-n 100000: ${small.lines} lines in ${small.ms} ms (whole command, on a shared machine)`);
  });

  test('no frame is larger than the frame limit; the tail ends with StreamEnd and its cursor', async () => {
    const token = fs.readFileSync(h.paths.tokenFile, 'utf8');
    const peer = await RawPeer.connect(h.paths.socket);
    try {
      peer.send({ id: 0, type: 'Hello', protocol: PROTOCOL_VERSION, client: 'tail-test', token });
      peer.send({ id: 1, type: 'ServiceLogs', name: 'big', lines: 1_000_000, follow: false });
      const end = await peer.waitFrame((f) => f['id'] === 1 && f['type'] === 'StreamEnd', 60_000);
      assert.ok(end !== null);
      const batches = peer.frames.filter((f) => f['type'] === 'LogBatch');
      let lines = 0;
      let maxBytes = 0;
      for (const b of batches) {
        const data = b['data'] as Uint8Array;
        maxBytes = Math.max(maxBytes, data.length);
        const runs = b['runs'] as number[];
        for (let i = 2; i < runs.length; i += 3) lines += runs[i] as number;
      }
      assert.ok(batches.length > 4, `${batches.length} frames`);
      assert.ok(maxBytes < DEFAULT_MAX_FRAME / 4, `largest frame data ${maxBytes} bytes`);
      assert.ok(lines >= 1_000_000 && lines <= 1_000_003, `${lines} lines`);
    } finally {
      peer.close();
    }
  });
});
