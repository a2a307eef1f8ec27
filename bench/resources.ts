// What the daemon costs the machine: resident memory (VmRSS) idle and with services, and CPU time
// (utime + stime) over a quiet interval with services running. The baseline is an idle `node` process
// (a timer and nothing else) measured over the same interval: the floor of any Node.js daemon.

import type { ChildProcess } from 'node:child_process';
import type { Harness } from './harness.js';
import { cpuTicks, rssAnonBytes, rssBytes, TICKS_PER_SEC } from './proc.js';
import { sleep, waitUntil } from './stats.js';
import type { Row } from './table.js';

const MiB = 1024 * 1024;

export class IdleNode {
  private constructor(readonly child: ChildProcess) {}

  static async start(h: Harness): Promise<IdleNode> {
    const child = h.spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
    h.onCleanup(() => {
      child.kill('SIGKILL');
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const node = new IdleNode(child);
    // Past its start-up: RSS settles once the bootstrap's garbage is in place.
    await waitUntil(() => rssBytes(node.pid) > 0, 5000, 'the idle node process');
    await sleep(500);
    return node;
  }

  get pid(): number {
    return this.child.pid as number;
  }
}

export function rssRow(daemonPid: number, idle: IdleNode, what: string, target: number | null): Row {
  const value = rssBytes(daemonPid) / MiB;
  return {
    group: 'Resources',
    metric: `daemon RSS, ${what}`,
    value,
    unit: 'MB',
    baselineLabel: 'idle `node`',
    baseline: rssBytes(idle.pid) / MiB,
    target: target === null ? null : { text: `≤ ${target} MB`, ok: value <= target },
    // VmRSS counts the pages of the node binary it has touched (shared with every node process);
    // RssAnon is what the daemon alone holds.
    note: `private ${(rssAnonBytes(daemonPid) / MiB).toFixed(1)} MB vs ${(rssAnonBytes(idle.pid) / MiB).toFixed(1)} MB`,
  };
}

/** CPU use of the daemon over `seconds`, percent of one core, against the idle node process. */
export async function cpuRow(daemonPid: number, idle: IdleNode, services: number, seconds: number): Promise<Row> {
  // Let the starts settle (state file writes, log notes) before the quiet interval begins.
  await sleep(1000);
  const d0 = cpuTicks(daemonPid);
  const n0 = cpuTicks(idle.pid);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const elapsed = (Date.now() - t0) / 1000;
  const pct = (ticks: number): number => (ticks / TICKS_PER_SEC / elapsed) * 100;
  const value = pct(cpuTicks(daemonPid) - d0);
  return {
    group: 'Resources',
    metric: `daemon CPU, ${services} idle services, over ${seconds} s`,
    value,
    unit: '%',
    baselineLabel: 'idle `node`',
    baseline: pct(cpuTicks(idle.pid) - n0),
    target: { text: '≤ 0.5 % of a core', ok: value <= 0.5 },
    note: `${TICKS_PER_SEC} ticks/s resolution`,
  };
}
