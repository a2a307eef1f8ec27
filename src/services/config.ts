// A service's configuration: defaults, validation and normalisation of a ServiceConfig (plus
// the health and log fields). The services file, plugin manifests and ad-hoc StartService requests all
// pass through validateServiceConfig, so a definition means the same wherever it came from, and two
// definitions can be compared (reload) by their normalised form.

import path from 'node:path';
import { PLUGIN_PIDS_DEFAULT } from '../system/rlimits.js';
import { HEALTH_CHECK_FIELDS, SERVICE_CONFIG_FIELDS, type HealthCheck, type ServiceConfig } from '../protocol/types.js';

/** The defaults documented in docs/protocol.md. */
export const CONFIG_DEFAULTS = {
  restart_on_failure: true,
  max_restarts: 5,
  privileged: false,
  stop_timeout: 10,
  ready_notify: false,
} as const;

/** Liveness probe defaults (HealthCheck's documented defaults). */
export const LIVENESS_DEFAULTS = { interval_secs: 10, timeout_secs: 5, failure_threshold: 3 } as const;
/**
 * Readiness probes poll faster by default: the service is not usable until the probe passes, and a
 * 10 s interval would make every start of a probed service cost 10 s. Only while starting, so cheap.
 */
export const READINESS_DEFAULTS = { interval_secs: 1, timeout_secs: 5, failure_threshold: 3 } as const;

// Bounds: each number a user can give has a limit, so a typo cannot ask for a 10^12 s wait.
export const LIMITS = {
  maxRestarts: 1000,
  stopTimeoutSecs: 3600,
  probeMinSecs: 0.05,
  probeMaxSecs: 3600,
  failureThreshold: 100,
  logMinBytes: 4096,
  logMaxBytes: 2 ** 40,
  logMaxFiles: 100,
  pidsMax: 1_000_000,
  memoryMinBytes: 16 * 1024 * 1024,
  memoryMaxBytes: 2 ** 40,
} as const;

/**
 * What a plugin's manifest may ask for, lower than the admin's services file: its logs no larger than
 * the log module's defaults (10 MiB, 4 rotated files), and always a process limit (launch.ts).
 */
export const PLUGIN_LIMITS = {
  logMaxBytes: 10 * 1024 * 1024,
  logMaxFiles: 4,
  pidsDefault: PLUGIN_PIDS_DEFAULT,
  pidsMax: 4096,
} as const;

/** A health check with its defaults filled in and exactly one probe kind set. */
export interface NormalizedHealthCheck extends HealthCheck {
  interval_secs: number;
  timeout_secs: number;
  failure_threshold: number;
}

/**
 * A ServiceConfig with every field present (defaults applied). The wire shape, except that the log
 * fields are null for "the log module's default".
 */
export interface NormalizedConfig extends Omit<ServiceConfig, 'log_max_bytes' | 'log_max_files'> {
  args: string[];
  env: Record<string, string>;
  working_dir: string | null;
  restart_on_failure: boolean;
  max_restarts: number;
  privileged: boolean;
  stop_timeout: number;
  ready_notify: boolean;
  readiness: NormalizedHealthCheck | null;
  liveness: NormalizedHealthCheck | null;
  /** null: the log module's default. */
  log_max_bytes: number | null;
  log_max_files: number | null;
  /** Processes (and threads) the service may have; null: no limit (launch.ts says how it is applied). */
  pids_max: number | null;
  /** Bytes of memory each of its processes may allocate; null: no limit. */
  memory_max: number | null;
}

export interface FieldError {
  /** The field's path, e.g. `max_restarts`, `env.PORT`, `liveness.tcp`. */
  field: string;
  message: string;
}

export interface ValidationResult {
  /** Present only when there are no errors. */
  config: NormalizedConfig | null;
  autoStart: boolean;
  errors: FieldError[];
}

const CONFIG_KEYS: ReadonlySet<string> = new Set(SERVICE_CONFIG_FIELDS);
const HEALTH_KEYS: ReadonlySet<string> = new Set(HEALTH_CHECK_FIELDS);

/** The message for a field nobody knows, with the nearest known one when it looks like a typo of it. */
function unknownField(key: string, known: readonly string[]): string {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const typo = best !== null && bestDistance <= Math.max(1, Math.floor(best.length / 3));
  return `unknown field${typo ? ` (did you mean "${best}"?)` : ''}; known fields: ${known.join(', ')}`;
}

/** Levenshtein distance (keys are short: a plain table is fine). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] as number;
}

/** How a value looks, for error messages ("got a string", "got 3.5"). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date || (typeof value === 'object' && value !== null && value.constructor?.name === 'TomlDate'))
    return 'a date';
  switch (typeof value) {
    case 'string':
      return `a string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
    case 'number':
      return `the number ${value}`;
    case 'bigint':
      return `the integer ${value}`;
    case 'boolean':
      return String(value);
    case 'object':
      return 'a table';
    default:
      return typeof value;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === null || proto === Object.prototype;
}

class Checker {
  readonly errors: FieldError[] = [];

  fail(field: string, message: string): undefined {
    this.errors.push({ field, message });
    return undefined;
  }

  string(field: string, value: unknown, opts: { nonEmpty?: boolean } = {}): string | undefined {
    if (typeof value !== 'string') return this.fail(field, `expected a string, got ${describe(value)}`);
    if (opts.nonEmpty === true && value === '') return this.fail(field, 'must not be empty');
    if (value.includes('\0')) return this.fail(field, 'must not contain a NUL byte');
    return value;
  }

  boolean(field: string, value: unknown): boolean | undefined {
    if (typeof value !== 'boolean') return this.fail(field, `expected true or false, got ${describe(value)}`);
    return value;
  }

  integer(field: string, value: unknown, min: number, max: number): number | undefined {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      return this.fail(field, `expected an integer from ${min} to ${max}, got ${describe(value)}`);
    }
    return value;
  }

  number(field: string, value: unknown, min: number, max: number): number | undefined {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      return this.fail(field, `expected a number from ${min} to ${max}, got ${describe(value)}`);
    }
    return value;
  }

  stringArray(field: string, value: unknown): string[] | undefined {
    if (!Array.isArray(value)) return this.fail(field, `expected an array of strings, got ${describe(value)}`);
    const out: string[] = [];
    let ok = true;
    value.forEach((item: unknown, i) => {
      const s = this.string(`${field}[${i}]`, item);
      if (s === undefined) ok = false;
      else out.push(s);
    });
    return ok ? out : undefined;
  }

  env(field: string, value: unknown): Record<string, string> | undefined {
    if (!isPlainObject(value))
      return this.fail(field, `expected a table of NAME = "value" strings, got ${describe(value)}`);
    const out: Record<string, string> = {};
    let ok = true;
    for (const [key, v] of Object.entries(value)) {
      if (key === '' || key.includes('=') || key.includes('\0')) {
        ok = false;
        this.fail(`${field}.${key}`, 'an environment variable name must be non-empty, without "=" or NUL');
        continue;
      }
      if (typeof v !== 'string') {
        ok = false;
        const hint = typeof v === 'number' || typeof v === 'boolean' ? ` (quote it: ${key} = "${String(v)}")` : '';
        this.fail(`${field}.${key}`, `expected a string, got ${describe(v)}${hint}`);
        continue;
      }
      if (v.includes('\0')) {
        ok = false;
        this.fail(`${field}.${key}`, 'must not contain a NUL byte');
        continue;
      }
      out[key] = v;
    }
    return ok ? out : undefined;
  }

  health(
    field: string,
    value: unknown,
    defaults: typeof LIVENESS_DEFAULTS | typeof READINESS_DEFAULTS,
  ): NormalizedHealthCheck | null | undefined {
    if (value === null) return null;
    if (!isPlainObject(value)) {
      return this.fail(
        field,
        `expected a table like { tcp = 8080 }, { http = "http://127.0.0.1:8080/health" } or { command = ["check"] }, got ${describe(value)}`,
      );
    }
    const before = this.errors.length;
    for (const key of Object.keys(value)) {
      if (!HEALTH_KEYS.has(key)) this.fail(`${field}.${key}`, unknownField(key, [...HEALTH_KEYS]));
    }
    const kinds = ['command', 'tcp', 'http'].filter((k) => value[k] !== undefined);
    if (kinds.length !== 1) {
      this.fail(
        field,
        kinds.length === 0 ? 'needs one of command, tcp or http' : `has ${kinds.join(' and ')}: give exactly one probe`,
      );
    }
    const out: NormalizedHealthCheck = {
      interval_secs: defaults.interval_secs,
      timeout_secs: defaults.timeout_secs,
      failure_threshold: defaults.failure_threshold,
    };
    if (value.command !== undefined) {
      const argv = this.stringArray(`${field}.command`, value.command);
      if (argv !== undefined && (argv.length === 0 || argv[0] === ''))
        this.fail(`${field}.command`, 'needs at least the program to run');
      else if (argv !== undefined) out.command = argv;
    }
    if (value.tcp !== undefined) {
      const tcp = parseTcpTarget(value.tcp);
      if (tcp === null)
        this.fail(`${field}.tcp`, `expected a port number (1-65535) or "host:port", got ${describe(value.tcp)}`);
      else out.tcp = typeof value.tcp === 'number' ? value.tcp : `${tcp.host}:${tcp.port}`;
    }
    if (value.http !== undefined) {
      const url = this.string(`${field}.http`, value.http);
      if (url !== undefined) {
        let parsed: URL | null = null;
        try {
          parsed = new URL(url);
        } catch {
          parsed = null;
        }
        if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
          this.fail(`${field}.http`, `expected an http:// or https:// URL, got ${describe(url)}`);
        } else {
          out.http = url;
        }
      }
    }
    if (value.interval_secs !== undefined) {
      const n = this.number(`${field}.interval_secs`, value.interval_secs, LIMITS.probeMinSecs, LIMITS.probeMaxSecs);
      if (n !== undefined) out.interval_secs = n;
    }
    if (value.timeout_secs !== undefined) {
      const n = this.number(`${field}.timeout_secs`, value.timeout_secs, LIMITS.probeMinSecs, LIMITS.probeMaxSecs);
      if (n !== undefined) out.timeout_secs = n;
    }
    if (value.failure_threshold !== undefined) {
      const n = this.integer(`${field}.failure_threshold`, value.failure_threshold, 1, LIMITS.failureThreshold);
      if (n !== undefined) out.failure_threshold = n;
    }
    return this.errors.length === before ? out : undefined;
  }
}

/** `8080` or `"8080"` → 127.0.0.1:8080; `"host:port"` / `"[::1]:port"` → that. null when invalid. */
export function parseTcpTarget(value: unknown): { host: string; port: number } | null {
  const port = (p: unknown): number | null => {
    const n = typeof p === 'number' ? p : typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : NaN;
    return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : null;
  };
  if (typeof value === 'number') {
    const p = port(value);
    return p === null ? null : { host: '127.0.0.1', port: p };
  }
  if (typeof value !== 'string') return null;
  const bare = port(value);
  if (bare !== null) return { host: '127.0.0.1', port: bare };
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d+)$/.exec(value);
  if (m === null) return null;
  const p = port(m[3]);
  const host = m[1] ?? m[2];
  return p === null || host === undefined ? null : { host, port: p };
}

/**
 * Validate a service's table (from the services file, a plugin manifest or the wire) and fill in the
 * defaults. `allowAutoStart` accepts the `auto_start` key, which only makes sense in a definition
 * source (an ad-hoc StartService is started by that very request). `plugin` holds the table to
 * PLUGIN_LIMITS: a plugin's service always has a process limit and smaller logs.
 */
export function validateServiceConfig(
  raw: unknown,
  opts: { allowAutoStart?: boolean; plugin?: boolean } = {},
): ValidationResult {
  const c = new Checker();
  const plugin = opts.plugin === true;
  if (!isPlainObject(raw)) {
    c.fail('(table)', `expected a table of service fields, got ${describe(raw)}`);
    return { config: null, autoStart: false, errors: c.errors };
  }
  const known = opts.allowAutoStart === true ? [...CONFIG_KEYS, 'auto_start'] : [...CONFIG_KEYS];
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) c.fail(key, unknownField(key, known));
  }

  const get = <T>(key: string, check: (field: string, v: unknown) => T | undefined, fallback: T): T => {
    const v = raw[key];
    if (v === undefined) return fallback;
    const out = check(key, v);
    return out === undefined ? fallback : out;
  };

  let command = '';
  if (raw.command === undefined) c.fail('command', 'is required: the program to run');
  else command = c.string('command', raw.command, { nonEmpty: true }) ?? '';

  const args = get('args', (f, v) => c.stringArray(f, v), [] as string[]);
  const env = get('env', (f, v) => c.env(f, v), {} as Record<string, string>);
  const workingDir = get<string | null>(
    'working_dir',
    (f, v) => {
      if (v === null) return null;
      const s = c.string(f, v, { nonEmpty: true });
      if (s !== undefined && !path.isAbsolute(s)) return c.fail(f, `must be an absolute path, got ${describe(s)}`);
      return s;
    },
    null,
  );
  const config: NormalizedConfig = {
    command,
    args,
    env,
    working_dir: workingDir,
    restart_on_failure: get('restart_on_failure', (f, v) => c.boolean(f, v), CONFIG_DEFAULTS.restart_on_failure),
    max_restarts: get('max_restarts', (f, v) => c.integer(f, v, 0, LIMITS.maxRestarts), CONFIG_DEFAULTS.max_restarts),
    privileged: get('privileged', (f, v) => c.boolean(f, v), CONFIG_DEFAULTS.privileged),
    stop_timeout: get(
      'stop_timeout',
      (f, v) => c.number(f, v, 0, LIMITS.stopTimeoutSecs),
      CONFIG_DEFAULTS.stop_timeout,
    ),
    ready_notify: get('ready_notify', (f, v) => c.boolean(f, v), CONFIG_DEFAULTS.ready_notify),
    readiness: get<NormalizedHealthCheck | null>('readiness', (f, v) => c.health(f, v, READINESS_DEFAULTS), null),
    liveness: get<NormalizedHealthCheck | null>('liveness', (f, v) => c.health(f, v, LIVENESS_DEFAULTS), null),
    log_max_bytes: get<number | null>(
      'log_max_bytes',
      (f, v) =>
        v === null
          ? null
          : c.integer(f, v, LIMITS.logMinBytes, plugin ? PLUGIN_LIMITS.logMaxBytes : LIMITS.logMaxBytes),
      null,
    ),
    log_max_files: get<number | null>(
      'log_max_files',
      (f, v) => (v === null ? null : c.integer(f, v, 0, plugin ? PLUGIN_LIMITS.logMaxFiles : LIMITS.logMaxFiles)),
      null,
    ),
    pids_max: get<number | null>(
      'pids_max',
      (f, v) => (v === null ? null : c.integer(f, v, 1, plugin ? PLUGIN_LIMITS.pidsMax : LIMITS.pidsMax)),
      null,
    ),
    memory_max: get<number | null>(
      'memory_max',
      (f, v) => (v === null ? null : c.integer(f, v, LIMITS.memoryMinBytes, LIMITS.memoryMaxBytes)),
      null,
    ),
  };
  if (plugin) {
    // The admin's services file may leave a service unlimited; a plugin's never is.
    config.pids_max ??= PLUGIN_LIMITS.pidsDefault;
    if (config.log_max_bytes === null) config.log_max_bytes = PLUGIN_LIMITS.logMaxBytes;
    if (config.log_max_files === null) config.log_max_files = PLUGIN_LIMITS.logMaxFiles;
  }
  const autoStart = opts.allowAutoStart === true ? get('auto_start', (f, v) => c.boolean(f, v), false) : false;
  return { config: c.errors.length === 0 ? config : null, autoStart, errors: c.errors };
}

/** A stable text form of a normalised config: equal strings mean the same definition. */
export function configKey(config: NormalizedConfig): string {
  return JSON.stringify(sortKeys(config));
}

/**
 * Like configKey, but only what the process sees: log options are applied to a running service without
 * a restart (its output is written through whichever log is current).
 */
export function processKey(config: NormalizedConfig): string {
  return configKey({ ...config, log_max_bytes: null, log_max_files: null });
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

export function formatFieldError(e: FieldError): string {
  return `field "${e.field}": ${e.message}`;
}
