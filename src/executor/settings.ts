// The daemon's Run / SudoRun and audit bounds, as the environment sets them (README, "Configuration").
// A value that is not a whole number in its range is ignored with a warning, and the default holds: a
// daemon must start even with a typo in its environment, and the admin learns of it from the log.

import { AUDIT_MAX_FILES, AUDIT_MIN_FILE_BYTES, type AuditOptions } from './audit.js';
import type { ExecutorLimits } from './executor.js';

export interface ExecutorSettings {
  limits: Partial<ExecutorLimits>;
  audit: AuditOptions;
  /** One line per ignored variable. */
  warnings: string[];
}

const TiB = 2 ** 40;

/** Each variable: where its value goes, and its range. */
const VARIABLES = [
  {
    env: 'ADI_DAEMON_MAX_COMMANDS',
    set: (s: ExecutorSettings, n: number) => (s.limits.maxCommands = n),
    min: 1,
    max: 4096,
  },
  {
    env: 'ADI_DAEMON_OUTPUT_BUDGET',
    set: (s: ExecutorSettings, n: number) => (s.limits.outputBudgetBytes = n),
    min: 64 * 1024,
    max: TiB,
  },
  {
    env: 'ADI_DAEMON_AUDIT_MAX_BYTES',
    set: (s: ExecutorSettings, n: number) => (s.audit.maxBytes = n),
    min: AUDIT_MIN_FILE_BYTES,
    max: TiB,
  },
  {
    env: 'ADI_DAEMON_AUDIT_MAX_FILES',
    set: (s: ExecutorSettings, n: number) => (s.audit.maxFiles = n),
    min: 0,
    max: AUDIT_MAX_FILES,
  },
] as const;

export function executorSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ExecutorSettings {
  const settings: ExecutorSettings = { limits: {}, audit: {}, warnings: [] };
  for (const v of VARIABLES) {
    const raw = env[v.env];
    if (raw === undefined || raw === '') continue;
    const n = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
    if (Number.isSafeInteger(n) && n >= v.min && n <= v.max) v.set(settings, n);
    else
      settings.warnings.push(
        `${v.env}=${JSON.stringify(raw.slice(0, 40))} is ignored: expected a whole number from ${v.min} to ${v.max}; the default applies`,
      );
  }
  return settings;
}
