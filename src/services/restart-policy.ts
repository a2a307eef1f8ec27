// When to restart a service that exited on its own. systemd's model, with PM2's crash loop (
// 40,000 restarts) and supervisord's slow first restart (1 s, growing linearly) as the cautionary tales:
//
// - the first restart after a crash is immediate (0 ms): a one-off crash costs only the spawn;
// - repeated crashes back off exponentially, 100 ms, 200 ms, 400 ms, ... capped at 30 s;
// - at most `max_restarts` automatic restarts within a 60 s window; past that the service is failed;
// - a run that lasted 30 s is "stable": it resets both the backoff and the limit counter, so a service
//   that crashes once a day is restarted every time.
//
// Pure bookkeeping with injected times, so it is tested without processes or clocks.

export interface RestartPolicyOptions {
  maxRestarts: number;
  /** Window in which at most maxRestarts automatic restarts may happen. */
  windowMs?: number;
  /** A run at least this long resets the backoff and the limit counter. */
  stableMs?: number;
  /** Delay before the second restart in a row; doubled each time after. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export const RESTART_WINDOW_MS = 60_000;
export const STABLE_RUN_MS = 30_000;
export const BACKOFF_BASE_MS = 100;
export const BACKOFF_MAX_MS = 30_000;

export type RestartDecision =
  | { action: 'restart'; delayMs: number }
  | { action: 'give-up'; restartsInWindow: number; windowSecs: number };

export class RestartPolicy {
  private readonly windowMs: number;
  private readonly stableMs: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  /** When each automatic restart within the window was decided. */
  private recent: number[] = [];
  /** Crashes in a row without a stable run; selects the backoff delay. */
  private streak = 0;

  constructor(
    private maxRestarts: number,
    opts: Omit<RestartPolicyOptions, 'maxRestarts'> = {},
  ) {
    this.windowMs = opts.windowMs ?? RESTART_WINDOW_MS;
    this.stableMs = opts.stableMs ?? STABLE_RUN_MS;
    this.baseMs = opts.backoffBaseMs ?? BACKOFF_BASE_MS;
    this.maxMs = opts.backoffMaxMs ?? BACKOFF_MAX_MS;
  }

  /** A user start: forget everything. */
  reset(maxRestarts = this.maxRestarts): void {
    this.maxRestarts = maxRestarts;
    this.recent = [];
    this.streak = 0;
  }

  /** The delay for the n-th restart in a row (0-based): 0, base, 2*base, 4*base, ... capped. */
  delayFor(streak: number): number {
    if (streak <= 0) return 0;
    // 2 ** 30 * 100 ms is far past any cap; clamp the exponent so the number stays finite.
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(streak - 1, 30));
  }

  /** A run that lasted `runMs` ended on its own at `now`: restart (after how long) or give up? */
  onExit(runMs: number, now: number): RestartDecision {
    if (runMs >= this.stableMs) {
      this.recent = [];
      this.streak = 0;
    }
    this.recent = this.recent.filter((t) => now - t < this.windowMs);
    if (this.recent.length >= this.maxRestarts) {
      return { action: 'give-up', restartsInWindow: this.recent.length, windowSecs: Math.round(this.windowMs / 1000) };
    }
    const delayMs = this.delayFor(this.streak);
    this.streak++;
    this.recent.push(now + delayMs);
    return { action: 'restart', delayMs };
  }
}
