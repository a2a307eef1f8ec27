// Many services: the time to start them one StartService at a time (ad-hoc `/bin/sleep`), whether
// that time grows with the number already running, and the `services` (ListServices) round trip with
// 200 and 1,000 of them, against the raw echo of a frame as large as the daemon's answer.

import type { DaemonClient } from '../src/index.js';
import { encode } from '../src/wire/codec.js';
import { EchoClient, echoFrame } from './echo-baseline.js';
import type { Harness } from './harness.js';
import { alternate, median, nowNs, timed } from './stats.js';
import type { Row } from './table.js';

export const SLEEP = '/bin/sleep';

export function sleeperName(i: number): string {
  return `sl-${String(i).padStart(4, '0')}`;
}

/** Ad-hoc sleepers started in order; keeps each start's round trip. */
export class Sleepers {
  readonly startMs: number[] = [];

  constructor(private readonly client: DaemonClient) {}

  get count(): number {
    return this.startMs.length;
  }

  async startUpTo(n: number, deadlineMs = 300_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (this.startMs.length < n) {
      if (Date.now() > deadline)
        throw new Error(`starting ${n} services took over ${deadlineMs} ms (at ${this.startMs.length})`);
      const t = nowNs();
      await this.client.startService(sleeperName(this.startMs.length), {
        command: SLEEP,
        args: ['100000'],
        stop_timeout: 2,
      });
      this.startMs.push((nowNs() - t) / 1e6);
    }
  }
}

/** The floor for starting: spawn the same command directly, one at a time, until 'spawn'. */
export async function directSpawnMs(h: Harness, n: number): Promise<number> {
  const pids: number[] = [];
  const t = nowNs();
  try {
    for (let i = 0; i < n; i++) {
      const child = h.spawn(SLEEP, ['100000'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      if (child.pid !== undefined) pids.push(child.pid);
    }
    return (nowNs() - t) / 1e6;
  } finally {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

export async function listRoundTrip(
  client: DaemonClient,
  echoSocket: string,
  samples: number,
  services: number,
): Promise<Row> {
  const list = await client.listServices();
  if (list.length < services) throw new Error(`expected ${services} services, the daemon lists ${list.length}`);
  const bytes = encode({ id: 123456, type: 'Services', list }).length;
  const frame = echoFrame(bytes);
  const echo = await EchoClient.connect(echoSocket);
  try {
    for (let i = 0; i < 3; i++) {
      await client.listServices();
      await echo.roundTrip(frame);
    }
    const [daemon, raw] = await alternate<number>(samples, [
      () => timed(() => client.listServices()),
      () => timed(() => echo.roundTrip(frame)),
    ]);
    const d = median(daemon ?? []);
    return {
      group: 'Scale',
      metric: `\`services\` round trip, ${list.length} services`,
      value: d,
      unit: 'ms',
      baselineLabel: `raw echo of ${Math.round(bytes / 1024)} KiB`,
      baseline: median(raw ?? []),
      target: services >= 1000 ? { text: '< 20 ms', ok: d < 20 } : null,
      note: `median of ${samples}`,
    };
  } finally {
    echo.close();
  }
}

export function startRows(sleepers: Sleepers, directMs: number): Row[] {
  const n = sleepers.count;
  const total = sleepers.startMs.reduce((a, b) => a + b, 0);
  const tenth = Math.max(1, Math.floor(n / 10));
  const first = median(sleepers.startMs.slice(0, tenth));
  const last = median(sleepers.startMs.slice(n - tenth));
  return [
    {
      group: 'Scale',
      metric: `start ${n} services, one StartService at a time`,
      value: total / 1000,
      unit: 's',
      baselineLabel: `spawn ${n} directly`,
      baseline: directMs / 1000,
      target: null,
    },
    {
      group: 'Scale',
      metric: `StartService growth: last ${tenth} vs first ${tenth}`,
      value: last / first,
      unit: 'x',
      baselineLabel: null,
      baseline: null,
      // Linear work per start stays flat; anything quadratic in the service count shows here.
      target: { text: '≤ 2x', ok: last / first <= 2 },
      note: `median ${first.toFixed(2)} ms → ${last.toFixed(2)} ms`,
    },
  ];
}
