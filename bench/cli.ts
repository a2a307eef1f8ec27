// CLI cold start: `adi daemon status` against a running daemon, wall time from spawn to exit, against
// the floor of any Node.js command, `node -e 0`. Alternating runs, medians.

import { ADI, type Harness } from './harness.js';
import { alternate, median } from './stats.js';
import type { Row } from './table.js';

export async function nodeFloorMs(h: Harness): Promise<number> {
  return (await h.run(process.execPath, ['-e', '0'], { capture: false })).ms;
}

export async function benchCli(h: Harness, runs: number): Promise<{ rows: Row[]; nodeFloorMs: number }> {
  const status = async (): Promise<number> => {
    const r = await h.run(process.execPath, [ADI, 'daemon', 'status'], { capture: false });
    if (r.code !== 0) throw new Error(`adi daemon status exited ${r.code}`);
    return r.ms;
  };
  // Warm the page cache for both.
  await status();
  await nodeFloorMs(h);
  const [statusMs, floorMs] = await alternate<number>(runs, [status, () => nodeFloorMs(h)]);
  const s = median(statusMs ?? []);
  const f = median(floorMs ?? []);
  return {
    nodeFloorMs: f,
    rows: [
      {
        group: 'CLI',
        metric: '`adi daemon status` wall time',
        value: s,
        unit: 'ms',
        baselineLabel: '`node -e 0`',
        baseline: f,
        target: { text: '≤ 1.3x', ok: s / f <= 1.3 },
        note: `median of ${runs}`,
      },
    ],
  };
}
