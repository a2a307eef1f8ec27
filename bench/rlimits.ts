// What a plugin's process limit costs at start: its service (and Run command) is started through
// util-linux `prlimit`, one more exec before the program's own. Timed like the restart floor: from
// spawn until the program's first act (a stamp), directly and through prlimit, alternated.

import path from 'node:path';
import { PLUGIN_PIDS_DEFAULT, prlimitPath } from '../src/system/rlimits.js';
import type { Harness } from './harness.js';
import { spawnFloorMs, type StampKind } from './restart.js';
import { alternate, median } from './stats.js';
import type { Row } from './table.js';

export async function benchPrlimit(h: Harness, samples: number): Promise<Row[]> {
  const prlimit = prlimitPath('the bench');
  const limit = `--nproc=${PLUGIN_PIDS_DEFAULT}:${PLUGIN_PIDS_DEFAULT}`;
  const rows: Row[] = [];
  for (const kind of ['binary', 'node'] as StampKind[]) {
    const direct = path.join(h.scratch, `rl-direct-${kind}`);
    const limited = path.join(h.scratch, `rl-prlimit-${kind}`);
    const viaPrlimit = (c: { command: string; args: string[] }): { command: string; args: string[] } => ({
      command: prlimit,
      args: [limit, '--', c.command, ...c.args],
    });
    // Warm-up (page cache), not counted.
    await spawnFloorMs(h, kind, direct);
    await spawnFloorMs(h, kind, limited, viaPrlimit);
    const [plain, wrapped] = await alternate<number>(samples, [
      () => spawnFloorMs(h, kind, direct),
      () => spawnFloorMs(h, kind, limited, viaPrlimit),
    ]);
    const value = median(wrapped ?? []);
    rows.push({
      group: 'Plugin limits',
      metric: `spawn → first act through prlimit, ${kind === 'binary' ? 'plain binary' : 'Node.js service'}`,
      value,
      unit: 'ms',
      baselineLabel: 'direct spawn',
      baseline: median(plain ?? []),
      target: null,
      note: `median of ${samples}`,
    });
  }
  return rows;
}
