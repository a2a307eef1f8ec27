// Follow is seamless: late followers of a service writing 3,000 lines a second, whose log rotates every
// few hundred milliseconds, each get every line from their first one on exactly once, across the
// tail/follow seam and every rotation; a follower that disconnects and resumes from its cursor misses
// nothing and repeats nothing.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { FIXTURES, tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { startDaemon } from './helpers.js';

const TOTAL = 24_000;
const RATE = 3000;
let h: TempHome;

before(async () => {
  h = tempHome();
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  // 16 KiB segments: at ~30 KB/s of output the log rotates about twice a second; 50 are kept, so
  // nothing a follower needs is removed during the test.
  fs.writeFileSync(
    h.paths.servicesFile,
    `[counter]\ncommand = ${JSON.stringify(process.execPath)}\nargs = [${JSON.stringify(path.join(FIXTURES, 'counter.js'))}, "${TOTAL}", "${RATE}"]\nauto_start = true\nrestart_on_failure = false\nlog_max_bytes = 16384\nlog_max_files = 50\n`,
  );
  await startDaemon(h);
});
after(async () => {
  await h.cleanup();
});

/** The numbers of the "seq <n>" lines, in the order received. */
function numbers(texts: Buffer[]): number[] {
  const out: number[] = [];
  for (const t of texts) {
    const m = /^seq (\d+)$/.exec(t.toString());
    if (m) out.push(Number(m[1]));
  }
  return out;
}

/** Every number from the first one received to TOTAL, each once, in order. */
function assertComplete(got: number[], who: string): { first: number; lost: number; duplicated: number } {
  const seen = new Set<number>();
  let duplicated = 0;
  for (const n of got) {
    if (seen.has(n)) duplicated++;
    seen.add(n);
  }
  const first = got[0] ?? TOTAL + 1;
  let lost = 0;
  for (let n = first; n <= TOTAL; n++) if (!seen.has(n)) lost++;
  assert.equal(duplicated, 0, `${who}: ${duplicated} lines twice`);
  assert.equal(lost, 0, `${who}: ${lost} lines missing`);
  assert.deepEqual(
    got,
    Array.from({ length: TOTAL - first + 1 }, (_, i) => first + i),
    `${who}: out of order`,
  );
  return { first, lost, duplicated };
}

async function follow(
  client: DaemonClient,
  lines: number,
  cursor: string | null = null,
  stopAfter = Infinity,
): Promise<{ texts: Buffer[]; cursor: string | null }> {
  const texts: Buffer[] = [];
  const stream = client.readServiceLogs('counter', { lines, cursor, follow: true });
  for await (const batch of stream) {
    for (const e of batch) if (e.stream === 'out') texts.push(e.text);
    if (texts.some((t) => t.toString() === `seq ${TOTAL}`) || texts.length >= stopAfter) break;
  }
  return { texts, cursor: stream.cursor };
}

describe('log follow seam', () => {
  test('6 late followers and a resuming one get every line exactly once, across rotations', async (t) => {
    const probe = new DaemonClient({ env: h.env });
    const clients: DaemonClient[] = [];
    try {
      const followers: Array<Promise<{ texts: Buffer[] }>> = [];
      // Late followers, joining one after another while the service writes and the log rotates.
      for (let i = 0; i < 6; i++) {
        await waitFor(
          async () =>
            (await probe.serviceLogs('counter', { lines: 1 })).some(
              (l) => Number(/seq (\d+)$/.exec(l)?.[1]) >= (i + 1) * 2000,
            ),
          30_000,
          `line ${(i + 1) * 2000}`,
        );
        const c = new DaemonClient({ env: h.env });
        clients.push(c);
        followers.push(follow(c, 100 + i * 500));
      }
      // One that leaves after 3,000 lines and comes back from its cursor on a new connection.
      const c1 = new DaemonClient({ env: h.env });
      clients.push(c1);
      const part1 = await follow(c1, 50, null, 3000);
      c1.close();
      assert.ok(part1.cursor !== null);
      const c2 = new DaemonClient({ env: h.env });
      clients.push(c2);
      const part2 = await follow(c2, 0, part1.cursor);

      const results = await Promise.all(followers);
      const counts = results.map((r, i) => assertComplete(numbers(r.texts), `follower ${i + 1}`));
      const resumed = assertComplete([...numbers(part1.texts), ...numbers(part2.texts)], 'resumed follower');
      const segments = fs.readdirSync(h.paths.logsDir).filter((f) => f.startsWith('counter.idx')).length;
      t.diagnostic(
        `followers from lines ${counts.map((c) => c.first).join(', ')} to ${TOTAL}: 0 lost, 0 duplicated; resumed follower from ${resumed.first} (left after ${numbers(part1.texts).length} lines): 0 lost, 0 duplicated; ${segments} segments`,
      );
      assert.ok(segments >= 5, `the log rotated (${segments} segments)`);
    } finally {
      probe.close();
      for (const c of clients) c.close();
    }
  });
});
