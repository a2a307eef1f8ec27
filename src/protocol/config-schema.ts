// A service's configuration, described once: each field of ServiceConfig and HealthCheck with its type,
// bounds, default and a line of documentation. From this one table come the single validator (shape and
// bounds, every error naming the field and what it expected), the normalised form with every default
// filled in, the restrictions of a plugin's manifest (an overlay of lower bounds, not a second copy), and
// the tables of docs/protocol.md (a test renders them from here and compares). StartService configs, the
// services file, plugin manifests and the crash-recovery state all pass through validateServiceConfig.

import path from 'node:path';
import { AdiError } from '../core/errors.js';
import type { HealthCheck, ServiceConfig } from './types.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Documented {
  /** One line, the "meaning" column of docs/protocol.md. */
  readonly doc: string;
  /** How the default reads in the docs when the value alone does not say it (null meaning "the log module's"). */
  readonly defaultDoc?: string;
  /** The field may be nil on the wire and in the normalised form (nil and absent both mean "not given"). */
  readonly nullable?: true;
}
interface BooleanField extends Documented {
  readonly type: 'boolean';
  readonly default: boolean;
}
interface NumberField extends Documented {
  readonly type: 'integer' | 'number';
  readonly min: number;
  readonly max: number;
  readonly default: number | null;
  readonly unit?: 's' | 'bytes';
}
interface StringField extends Documented {
  readonly type: 'string';
  readonly maxLength: number;
  /** A required field has no default, and this says what it is in the error when it is missing. */
  readonly required?: string;
  readonly default?: string | null;
  readonly absolutePath?: true;
}
interface UrlField extends Documented {
  readonly type: 'url';
  readonly maxLength: number;
}
interface TcpField extends Documented {
  readonly type: 'tcp';
  readonly maxLength: number;
}
interface StringsField extends Documented {
  readonly type: 'strings';
  readonly minItems: number;
  readonly maxItems: number;
  readonly maxLength: number;
}
interface EnvField extends Documented {
  readonly type: 'env';
  readonly maxEntries: number;
  readonly maxLength: number;
}
interface HealthField extends Documented {
  readonly type: 'health';
  /** Defaults that differ from HEALTH_CHECK_SCHEMA's for this probe. */
  readonly defaults: Partial<Record<'interval_secs' | 'timeout_secs' | 'failure_threshold', number>>;
}
export type FieldSchema =
  | BooleanField
  | NumberField
  | StringField
  | UrlField
  | TcpField
  | StringsField
  | EnvField
  | HealthField;

/** The kinds of field a value of type T may be declared as. */
type FieldFor<T> = [T] extends [boolean]
  ? BooleanField
  : [T] extends [number]
    ? NumberField
    : [T] extends [string]
      ? StringField | UrlField
      : [T] extends [number | string]
        ? TcpField
        : [T] extends [string[]]
          ? StringsField
          : [T] extends [Record<string, string>]
            ? EnvField
            : [T] extends [HealthCheck]
              ? HealthField
              : never;

/**
 * A schema for interface I: exactly its keys (a missing or extra key does not compile), each declared
 * as a kind its type allows, nullable exactly when the type admits null.
 */
export type SchemaOf<I> = {
  readonly [K in keyof I]-?: FieldFor<Exclude<I[K], null | undefined>> &
    (null extends I[K] ? { readonly nullable: true } : { readonly nullable?: never });
};

/** Length of one argument or variable: generous for real use, small enough to be harmless. */
const ARG_CHARS = 128 * KiB;
/** Longest path (PATH_MAX on Linux). */
const PATH_CHARS = 4096;

export const HEALTH_CHECK_SCHEMA = {
  command: {
    type: 'strings',
    minItems: 1,
    maxItems: 256,
    maxLength: ARG_CHARS,
    doc: 'argv run without a shell; exit status 0 means healthy',
  },
  tcp: {
    type: 'tcp',
    maxLength: 300,
    doc: 'a port on 127.0.0.1, or `"host:port"`, that must accept a connection',
  },
  http: { type: 'url', maxLength: 2048, doc: 'an http:// or https:// URL that must answer with a status below 400' },
  interval_secs: {
    type: 'number',
    min: 0.05,
    max: 3600,
    default: 10,
    unit: 's',
    defaultDoc: '`10` (readiness: `1`)',
    doc: 'seconds between probes',
  },
  timeout_secs: { type: 'number', min: 0.05, max: 3600, default: 5, unit: 's', doc: 'seconds one probe may take' },
  failure_threshold: {
    type: 'integer',
    min: 1,
    max: 100,
    default: 3,
    doc: 'failures in a row that count as unhealthy',
  },
} as const satisfies SchemaOf<HealthCheck>;

/** A health check has exactly one of these. */
export const HEALTH_PROBES = ['command', 'tcp', 'http'] as const satisfies readonly (keyof HealthCheck)[];

export const SERVICE_CONFIG_SCHEMA = {
  command: {
    type: 'string',
    maxLength: PATH_CHARS,
    required: 'the program to run',
    doc: "program to run: an absolute path, or a name looked up in the daemon's `PATH`",
  },
  args: {
    type: 'strings',
    minItems: 0,
    maxItems: 4096,
    maxLength: ARG_CHARS,
    doc: 'its arguments (no shell is involved)',
  },
  env: { type: 'env', maxEntries: 1024, maxLength: ARG_CHARS, doc: "added to the service's environment" },
  working_dir: {
    type: 'string',
    maxLength: PATH_CHARS,
    absolutePath: true,
    default: null,
    nullable: true,
    defaultDoc: "the user's home (`/` for the plugin user)",
    doc: 'the directory it starts in: an absolute path',
  },
  restart_on_failure: {
    type: 'boolean',
    default: true,
    doc: 'restart when the process exits on its own (any exit, like systemd `Restart=always`)',
  },
  max_restarts: {
    type: 'integer',
    min: 0,
    max: 1000,
    default: 5,
    doc: 'automatic restarts allowed within a 60 s window; past it the service is `failed`',
  },
  privileged: {
    type: 'boolean',
    default: false,
    doc: "run through `ADI_ROOT_USER`'s sudo; admin only, never from a plugin",
  },
  stop_timeout: {
    type: 'number',
    min: 0,
    max: 3600,
    default: 10,
    unit: 's',
    doc: 'SIGTERM to the process group, SIGKILL after this long',
  },
  ready_notify: {
    type: 'boolean',
    default: false,
    doc: 'the service is `starting` until it writes a line to the fd named in `$ADI_READY_FD`',
  },
  readiness: {
    type: 'health',
    defaults: { interval_secs: 1 },
    nullable: true,
    doc: 'a probe that must pass before the service is `running`',
  },
  liveness: {
    type: 'health',
    defaults: {},
    nullable: true,
    doc: 'a probe that restarts the service (under its restart policy) after `failure_threshold` failures in a row',
  },
  log_max_bytes: {
    type: 'integer',
    min: 4 * KiB,
    max: 2 ** 40,
    default: null,
    nullable: true,
    unit: 'bytes',
    defaultDoc: '10 MiB',
    doc: "rotate the service's log (its data and index files together) past this size; a segment may pass it by one pipe read",
  },
  log_max_files: {
    type: 'integer',
    min: 0,
    max: 100,
    default: null,
    nullable: true,
    defaultDoc: '`4`',
    doc: 'rotated segments (each a data and an index file) kept besides the live one',
  },
  pids_max: {
    type: 'integer',
    min: 1,
    max: 1_000_000,
    default: null,
    nullable: true,
    doc: 'processes and threads the service may have, as `RLIMIT_NPROC` of the plugin user (`docs/security.md` section 10 says where it applies)',
  },
  memory_max: {
    type: 'integer',
    min: 16 * MiB,
    max: 2 ** 40,
    default: null,
    nullable: true,
    unit: 'bytes',
    doc: 'bytes each of its processes may allocate (`RLIMIT_DATA`); an allocation past it fails',
  },
} as const satisfies SchemaOf<ServiceConfig>;

export type ServiceConfigField = keyof typeof SERVICE_CONFIG_SCHEMA;

/** Every field of a ServiceConfig, in the order error messages list them: the validator refuses any other key. */
export const SERVICE_CONFIG_FIELDS = Object.keys(SERVICE_CONFIG_SCHEMA) as readonly ServiceConfigField[];
const HEALTH_CHECK_FIELDS = Object.keys(HEALTH_CHECK_SCHEMA) as readonly (keyof HealthCheck)[];

/** The one key a definition source (services.toml) has besides the ServiceConfig fields. */
export const AUTO_START = {
  type: 'boolean',
  default: false,
  doc: 'start the service with the daemon (services.toml only)',
} as const satisfies BooleanField;

/**
 * How a plugin's manifest may set a field: as in services.toml (`same`); given a meaning of the
 * manifest's own (`manifest`: its command is the plugin's subcommand); refused, with the reason shown;
 * or held to a lower maximum, with the default a plugin's service gets when the manifest sets none.
 */
export type PluginRule =
  | 'same'
  | 'manifest'
  | { readonly refused: string }
  | { readonly max: number; readonly default: number };
export type PluginRules = { readonly [K in ServiceConfigField]: PluginRule };

/** A health check with its defaults filled in and exactly one probe kind set. */
export interface NormalizedHealthCheck extends HealthCheck {
  interval_secs: number;
  timeout_secs: number;
  failure_threshold: number;
}

/**
 * A ServiceConfig with every field present, defaults filled in. A field whose default is "none" (or the
 * log module's default) is null.
 */
export type NormalizedConfig = {
  -readonly [K in ServiceConfigField]-?: K extends 'readiness' | 'liveness'
    ? NormalizedHealthCheck | null
    : Exclude<ServiceConfig[K], undefined>;
};

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

/** At most this many errors are listed for one definition (a 4096-item args of numbers is one mistake). */
const MAX_ERRORS = 20;

/** How a value looks, for error messages ("got a string", "got 3.5"). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'binary';
  if (value instanceof Date || (typeof value === 'object' && value.constructor?.name === 'TomlDate')) return 'a date';
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

/** A key someone wrote, as shown in a message: control characters escaped, cut when long. */
function shownKey(key: string): string {
  return JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key).slice(1, -1);
}

/** The message for a field nobody knows, with the nearest known one when it looks like a typo of it. */
function unknownField(key: string, known: readonly string[]): string {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase().slice(0, 64), k);
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

class Checker {
  readonly errors: FieldError[] = [];
  private omitted = 0;

  fail(field: string, message: string): undefined {
    if (this.errors.length < MAX_ERRORS) this.errors.push({ field, message });
    else this.omitted++;
    return undefined;
  }

  /** The errors, with a last line saying how many more there were. */
  all(): FieldError[] {
    return this.omitted === 0
      ? this.errors
      : [...this.errors, { field: '…', message: `and ${this.omitted} more errors not listed` }];
  }

  string(field: string, value: unknown, maxLength: number, nonEmpty: boolean): string | undefined {
    if (typeof value !== 'string') return this.fail(field, `expected a string, got ${describe(value)}`);
    if (nonEmpty && value === '') return this.fail(field, 'must not be empty');
    if (value.includes('\0')) return this.fail(field, 'must not contain a NUL byte');
    if (value.length > maxLength)
      return this.fail(field, `is ${value.length} characters long; at most ${maxLength} are allowed`);
    return value;
  }

  number(field: string, value: unknown, spec: NumberField, max: number): number | undefined {
    const integer = spec.type === 'integer';
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      (integer && !Number.isInteger(value)) ||
      value < spec.min ||
      value > max
    ) {
      return this.fail(
        field,
        `expected ${integer ? 'an integer' : 'a number'} from ${spec.min} to ${max}, got ${describe(value)}`,
      );
    }
    return value;
  }

  strings(field: string, value: unknown, spec: StringsField): string[] | undefined {
    if (!Array.isArray(value)) return this.fail(field, `expected an array of strings, got ${describe(value)}`);
    if (value.length > spec.maxItems)
      return this.fail(field, `has ${value.length} items; at most ${spec.maxItems} are allowed`);
    const before = this.errors.length + this.omitted;
    const out = value.map((item: unknown, i) => this.string(`${field}[${i}]`, item, spec.maxLength, false));
    if (this.errors.length + this.omitted > before) return undefined;
    if (spec.minItems > 0 && (out.length === 0 || out[0] === ''))
      return this.fail(field, 'needs at least the program to run');
    return out as string[];
  }

  env(field: string, value: unknown, spec: EnvField): Record<string, string> | undefined {
    if (!isPlainObject(value))
      return this.fail(field, `expected a table of NAME = "value" strings, got ${describe(value)}`);
    const entries = Object.entries(value);
    if (entries.length > spec.maxEntries)
      return this.fail(field, `has ${entries.length} variables; at most ${spec.maxEntries} are allowed`);
    const out: Record<string, string> = {};
    let ok = true;
    for (const [key, v] of entries) {
      if (key === '' || key.includes('=') || key.includes('\0')) {
        ok = false;
        this.fail(`${field}.${shownKey(key)}`, 'an environment variable name must be non-empty, without "=" or NUL');
        continue;
      }
      if (typeof v === 'number' || typeof v === 'boolean') {
        ok = false;
        this.fail(
          `${field}.${shownKey(key)}`,
          `expected a string, got ${describe(v)} (quote it: ${shownKey(key)} = "${String(v)}")`,
        );
        continue;
      }
      const s = this.string(`${field}.${shownKey(key)}`, v, spec.maxLength, false);
      if (s === undefined) ok = false;
      else out[key] = s;
    }
    return ok ? out : undefined;
  }

  /** One field's value checked against its schema, or undefined after recording why not. */
  value(field: string, spec: FieldSchema, value: unknown, max?: number): unknown {
    switch (spec.type) {
      case 'boolean':
        return typeof value === 'boolean' ? value : this.fail(field, `expected true or false, got ${describe(value)}`);
      case 'integer':
      case 'number':
        return this.number(field, value, spec, max ?? spec.max);
      case 'string': {
        const s = this.string(field, value, spec.maxLength, true);
        if (s !== undefined && spec.absolutePath === true && !path.isAbsolute(s))
          return this.fail(field, `must be an absolute path, got ${describe(s)}`);
        return s;
      }
      case 'url': {
        const s = this.string(field, value, spec.maxLength, true);
        if (s === undefined) return undefined;
        let protocol: string | null = null;
        try {
          protocol = new URL(s).protocol;
        } catch {
          protocol = null;
        }
        return protocol === 'http:' || protocol === 'https:'
          ? s
          : this.fail(field, `expected an http:// or https:// URL, got ${describe(s)}`);
      }
      case 'tcp': {
        const tcp = typeof value === 'string' && value.length > spec.maxLength ? null : parseTcpTarget(value);
        if (tcp === null)
          return this.fail(field, `expected a port number (1-65535) or "host:port", got ${describe(value)}`);
        return typeof value === 'number' ? value : `${tcp.host}:${tcp.port}`;
      }
      case 'strings':
        return this.strings(field, value, spec);
      case 'env':
        return this.env(field, value, spec);
      case 'health':
        return this.health(field, value, spec);
    }
  }

  health(field: string, value: unknown, spec: HealthField): NormalizedHealthCheck | undefined {
    if (!isPlainObject(value)) {
      return this.fail(
        field,
        `expected a table like { tcp = 8080 }, { http = "http://127.0.0.1:8080/health" } or { command = ["check"] }, got ${describe(value)}`,
      );
    }
    const before = this.errors.length + this.omitted;
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(HEALTH_CHECK_SCHEMA, key))
        this.fail(`${field}.${shownKey(key)}`, unknownField(key, HEALTH_CHECK_FIELDS));
    }
    const kinds = HEALTH_PROBES.filter((k) => value[k] != null);
    if (kinds.length !== 1) {
      this.fail(
        field,
        kinds.length === 0 ? 'needs one of command, tcp or http' : `has ${kinds.join(' and ')}: give exactly one probe`,
      );
    }
    const out: Record<string, unknown> = {};
    for (const key of HEALTH_CHECK_FIELDS) {
      const fieldSpec: FieldSchema = HEALTH_CHECK_SCHEMA[key];
      const given = value[key];
      if (given != null) {
        const v = this.value(`${field}.${key}`, fieldSpec, given);
        if (v !== undefined) out[key] = v;
      } else if (key === 'interval_secs' || key === 'timeout_secs' || key === 'failure_threshold') {
        out[key] = spec.defaults[key] ?? HEALTH_CHECK_SCHEMA[key].default;
      }
    }
    return this.errors.length + this.omitted === before ? (out as unknown as NormalizedHealthCheck) : undefined;
  }
}

/** A field's default, from the schema or the plugin overlay. */
function defaultOf(spec: FieldSchema, rule: PluginRule | undefined): unknown {
  if (typeof rule === 'object' && 'default' in rule) return rule.default;
  switch (spec.type) {
    case 'strings':
      return [];
    case 'env':
      return {};
    case 'health':
      return null;
    case 'url':
    case 'tcp':
      return undefined;
    default:
      return spec.default;
  }
}

/**
 * Validate a service's table (from the services file, a plugin manifest, the wire or the state file) and
 * fill in the defaults. `allowAutoStart` accepts the `auto_start` key, which only a definition source
 * has (an ad-hoc StartService is started by that very request). `plugin` applies a plugin's rules: lower
 * bounds, and defaults so that its service always has a process limit and bounded logs. Nil and an
 * absent field both mean "not given". Collects every error (up to 20), each naming its field.
 */
export function validateServiceConfig(
  raw: unknown,
  opts: { allowAutoStart?: boolean; plugin?: PluginRules } = {},
): ValidationResult {
  const c = new Checker();
  if (!isPlainObject(raw)) {
    c.fail('(table)', `expected a table of service fields, got ${describe(raw)}`);
    return { config: null, autoStart: false, errors: c.all() };
  }
  const known: readonly string[] =
    opts.allowAutoStart === true ? [...SERVICE_CONFIG_FIELDS, 'auto_start'] : SERVICE_CONFIG_FIELDS;
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) c.fail(shownKey(key), unknownField(key, known));
  }
  const out: Record<string, unknown> = {};
  for (const key of SERVICE_CONFIG_FIELDS) {
    const spec: FieldSchema = SERVICE_CONFIG_SCHEMA[key];
    const rule = opts.plugin?.[key];
    const given = raw[key];
    if (given == null) {
      if (spec.type === 'string' && spec.required !== undefined) c.fail(key, `is required: ${spec.required}`);
      out[key] = defaultOf(spec, rule);
      continue;
    }
    const max = typeof rule === 'object' && 'max' in rule ? rule.max : undefined;
    out[key] = c.value(key, spec, given, max);
  }
  const autoStart =
    opts.allowAutoStart === true && raw['auto_start'] != null
      ? c.value('auto_start', AUTO_START, raw['auto_start']) === true
      : AUTO_START.default;
  const errors = c.all();
  return { config: errors.length === 0 ? (out as unknown as NormalizedConfig) : null, autoStart, errors };
}

export function formatFieldError(e: FieldError): string {
  return `field "${e.field}": ${e.message}`;
}

/** BAD_CONFIG for an invalid definition of `subject` (e.g. `service "web"`), every error listed. */
export function configError(subject: string, errors: readonly FieldError[]): AdiError {
  return new AdiError('BAD_CONFIG', `${subject}: ${errors.map(formatFieldError).join('; ')}`);
}
