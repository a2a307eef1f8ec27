// Small statistics and timing helpers shared by the benchmark sections. Everything is bounded: a wait
// has a deadline, a loop a count.

export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/** The wall time of one call, in milliseconds. */
export async function timed(once: () => Promise<unknown>): Promise<number> {
  const t = nowNs();
  await once();
  return (nowNs() - t) / 1e6;
}

/** Run `once` `count` times in a row; the wall time of each call, in microseconds. */
export async function timeEach(count: number, once: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = nowNs();
    await once();
    out.push((nowNs() - t) / 1000);
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The q-quantile (0..1) of the samples, nearest-rank; NaN for none. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}

/** Wait until `check` holds, polling every `everyMs`, at most `timeoutMs`; throws naming `what` otherwise. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Run the variants in alternating rounds (A B, B A, A B, ...) so that drift in the machine's load
 * hits each of them alike; returns the samples of each variant, in round order.
 */
export async function alternate<T>(
  rounds: number,
  variants: ReadonlyArray<(round: number) => Promise<T>>,
): Promise<T[][]> {
  const out: T[][] = variants.map(() => []);
  for (let round = 0; round < rounds; round++) {
    const order = variants.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) out[i]?.push(await (variants[i] as (round: number) => Promise<T>)(round));
  }
  return out;
}

/**
 * Wall-clock time in microseconds with sub-millisecond precision, for comparing with timestamps another
 * process took from the realtime clock (bash's $EPOCHREALTIME). Date.now() has 1 ms resolution, so the
 * offset between it and the monotonic clock is taken at the instant Date.now() ticks over.
 */
export function realtimeOffsetUs(): number {
  const start = Date.now();
  const spinUntil = nowNs() + 5e6;
  let d = start;
  let h = nowNs();
  while (d === start && h < spinUntil) {
    h = nowNs();
    d = Date.now();
  }
  return d * 1000 - h / 1000;
}
