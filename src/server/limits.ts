// Environment overrides of the per-connection limits, so a test (or a cautious admin) can run a daemon
// with short timeouts: the stress suite checks that slow clients are cut off without waiting the
// default 10 s / 30 s. Only lowering-or-raising within sane bounds is accepted; anything else is
// ignored with the default kept, since a daemon must start even with a typo in its environment.

import type { ConnectionLimits } from './connection.js';

/** Each override: its variable and the range it may take (ms). */
const OVERRIDES = {
  handshakeTimeoutMs: { env: 'ADI_DAEMON_HANDSHAKE_TIMEOUT_MS', min: 10, max: 3_600_000 },
  frameTimeoutMs: { env: 'ADI_DAEMON_FRAME_TIMEOUT_MS', min: 10, max: 3_600_000 },
} as const;

/** The limits the environment sets; a missing or invalid value is left out (the default applies). */
export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ConnectionLimits> {
  const out: Partial<ConnectionLimits> = {};
  for (const [key, { env: name, min, max }] of Object.entries(OVERRIDES) as [
    keyof typeof OVERRIDES,
    (typeof OVERRIDES)[keyof typeof OVERRIDES],
  ][]) {
    const raw = env[name];
    if (raw === undefined || !/^\d+$/.test(raw)) continue;
    const value = Number(raw);
    if (value >= min && value <= max) out[key] = value;
  }
  return out;
}
