// ping() through DaemonClient against the raw echo floor: sequential latency (p50, p99) and pipelined
// throughput on one connection, in alternating rounds.

import type { DaemonClient } from '../src/index.js';
import { encode } from '../src/wire/codec.js';
import { EchoClient, echoFrame } from './echo-baseline.js';
import { alternate, nowNs, quantile, timed } from './stats.js';
import type { Row } from './table.js';

export interface PingCounts {
  /** Sequential samples per round and rounds (each round: echo then daemon, or the reverse). */
  samples: number;
  rounds: number;
  /** Pipelined requests per round, the window in flight, and rounds. */
  pipelined: number;
  window: number;
  pipelinedRounds: number;
}

export interface PingResult {
  rows: Row[];
  echoP50Us: number;
  echoP99Us: number;
  /** Body size of the echo frames (the daemon's Pong frame body, the larger of the two). */
  frameBytes: number;
}

export async function pingDaemonClient(client: DaemonClient, n: number): Promise<number[]> {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t = nowNs();
    await client.ping();
    out[i] = (nowNs() - t) / 1000;
  }
  return out;
}

async function pingEcho(echo: EchoClient, frame: Buffer, n: number): Promise<number[]> {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t = nowNs();
    await echo.roundTrip(frame);
    out[i] = (nowNs() - t) / 1000;
  }
  return out;
}

export function pipelinedDaemon(client: DaemonClient, count: number, window: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    const one = (): void => {
      sent++;
      client.ping().then(() => {
        done++;
        if (done === count) resolve();
        else if (sent < count) one();
      }, reject);
    };
    for (let i = 0; i < Math.min(window, count); i++) one();
  });
}

export async function benchPing(client: DaemonClient, echoSocket: string, counts: PingCounts): Promise<PingResult> {
  const pong = await client.ping();
  const frameBytes = encode({ id: 123456, type: 'Pong', ...pong }).length;
  const frame = echoFrame(frameBytes);
  const echo = await EchoClient.connect(echoSocket);
  try {
    // Warm up both sides (JIT, socket buffers) before anything counts.
    await pingEcho(echo, frame, Math.min(2000, counts.samples));
    await pingDaemonClient(client, Math.min(2000, counts.samples));
    await echo.pipelined(frame, Math.min(10_000, counts.pipelined), counts.window);
    await pipelinedDaemon(client, Math.min(10_000, counts.pipelined), counts.window);

    const [echoRounds, daemonRounds] = await alternate<number[]>(counts.rounds, [
      () => pingEcho(echo, frame, counts.samples),
      () => pingDaemonClient(client, counts.samples),
    ]);
    const echoLat = (echoRounds ?? []).flat();
    const daemonLat = (daemonRounds ?? []).flat();
    const [echoMs, daemonMs] = await alternate<number>(counts.pipelinedRounds, [
      () => timed(() => echo.pipelined(frame, counts.pipelined, counts.window)),
      () => timed(() => pipelinedDaemon(client, counts.pipelined, counts.window)),
    ]);
    // Throughput of each round; the median round is reported.
    const echoRate = quantile(
      (echoMs ?? []).map((ms) => counts.pipelined / (ms / 1000)),
      0.5,
    );
    const daemonRate = quantile(
      (daemonMs ?? []).map((ms) => counts.pipelined / (ms / 1000)),
      0.5,
    );

    const e50 = quantile(echoLat, 0.5);
    const e99 = quantile(echoLat, 0.99);
    const d50 = quantile(daemonLat, 0.5);
    const d99 = quantile(daemonLat, 0.99);
    const rows: Row[] = [
      {
        group: 'IPC',
        metric: 'ping() p50, DaemonClient',
        value: d50,
        unit: 'us',
        baselineLabel: 'raw echo p50',
        baseline: e50,
        target: { text: '≤ 1.3x', ok: d50 / e50 <= 1.3 },
      },
      {
        group: 'IPC',
        metric: 'ping() p99, DaemonClient',
        value: d99,
        unit: 'us',
        baselineLabel: 'raw echo p99',
        baseline: e99,
        target: null,
      },
      {
        group: 'IPC',
        metric: `pipelined ping(), ${counts.window} in flight`,
        value: daemonRate,
        unit: 'req/s',
        baselineLabel: 'raw echo pipelined',
        baseline: echoRate,
        target: { text: '≥ 0.6x', ok: daemonRate / echoRate >= 0.6 },
        note: `${counts.pipelined} per round, median of ${counts.pipelinedRounds}`,
      },
    ];
    return { rows, echoP50Us: e50, echoP99Us: e99, frameBytes };
  } finally {
    echo.close();
  }
}
