// Validation of everything decoded off the wire, before any of it is used. A decoded value is `unknown`
// until it passes here; what passes has exactly the types of protocol/types.ts, with bounded sizes.
// Unknown keys in an envelope are ignored (room for later optional fields). A StartService's config is
// checked and normalised by config-schema.ts, as the services file and manifests are; unknown keys in
// it are refused, because a misspelt setting silently ignored is a bug for the user.

import { AdiError } from '../core/errors.js';
import { NAME_PATTERN } from '../core/paths.js';
import {
  configError,
  isPlainObject,
  SERVICE_CONFIG_SCHEMA,
  validateServiceConfig,
  type NormalizedConfig,
} from './config-schema.js';
import {
  REQUEST_TYPES,
  RESPONSE_TYPES,
  PLUGIN_SOCKET_STATES,
  SERVICE_STATES,
  type ErrorData,
  type PluginSocketStatus,
  type ReloadReport,
  type Request,
  type RequestType,
  type Response,
  type ResponseType,
  type ServiceInfo,
} from './types.js';

/** Bounds on what one request may carry. Generous for real use, small enough to be harmless. */
export const LIMITS = {
  string: 64 * 1024,
  /** Run's command and arguments are held to a service's. */
  command: SERVICE_CONFIG_SCHEMA.command.maxLength,
  arg: SERVICE_CONFIG_SCHEMA.args.maxLength,
  args: SERVICE_CONFIG_SCHEMA.args.maxItems,
  logLines: 1_000_000,
  reason: 1000,
  clientName: 200,
  token: 512,
  /** Lines of name conflicts in a Pong or Services (one per contested name). */
  conflicts: 4096,
} as const;

type Obj = Record<string, unknown>;

function fail(message: string): never {
  throw new AdiError('BAD_REQUEST', message);
}

function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'binary';
  return typeof value === 'object' ? 'a map' : `a ${typeof value}`;
}

class Fields {
  constructor(
    private readonly obj: Obj,
    private readonly where: string,
  ) {}

  private has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.obj, key);
  }

  private value(key: string): unknown {
    return this.has(key) ? this.obj[key] : undefined;
  }

  string(key: string, max: number = LIMITS.string, { nonEmpty = false } = {}): string {
    const v = this.value(key);
    if (typeof v !== 'string')
      fail(`${this.where}.${key} must be a string, got ${v === undefined ? 'nothing' : describe(v)}.`);
    if (v.length > max) fail(`${this.where}.${key} is longer than ${max} characters.`);
    if (nonEmpty && v.length === 0) fail(`${this.where}.${key} must not be empty.`);
    if (v.includes('\0')) fail(`${this.where}.${key} must not contain a NUL character.`);
    return v;
  }

  optString(key: string, max: number = LIMITS.string): string | null | undefined {
    const v = this.value(key);
    if (v === undefined || v === null) return v as null | undefined;
    return this.string(key, max);
  }

  bool(key: string): boolean {
    const v = this.value(key);
    if (typeof v !== 'boolean')
      fail(`${this.where}.${key} must be a boolean, got ${v === undefined ? 'nothing' : describe(v)}.`);
    return v;
  }

  optBool(key: string): boolean | undefined {
    return this.value(key) === undefined ? undefined : this.bool(key);
  }

  int(key: string, min: number, max: number): number {
    const v = this.value(key);
    if (typeof v !== 'number' || !Number.isInteger(v))
      fail(`${this.where}.${key} must be an integer, got ${v === undefined ? 'nothing' : describe(v)}.`);
    if (v < min || v > max) fail(`${this.where}.${key} must be between ${min} and ${max}, got ${v}.`);
    return v;
  }

  optInt(key: string, min: number, max: number): number | null | undefined {
    const v = this.value(key);
    if (v === undefined || v === null) return v as null | undefined;
    return this.int(key, min, max);
  }

  number(key: string, min: number, max: number): number {
    const v = this.value(key);
    if (typeof v !== 'number' || !Number.isFinite(v))
      fail(`${this.where}.${key} must be a number, got ${v === undefined ? 'nothing' : describe(v)}.`);
    if (v < min || v > max) fail(`${this.where}.${key} must be between ${min} and ${max}, got ${v}.`);
    return v;
  }

  optNumber(key: string, min: number, max: number): number | null | undefined {
    const v = this.value(key);
    if (v === undefined || v === null) return v as null | undefined;
    return this.number(key, min, max);
  }

  stringArray(key: string, maxItems: number, maxEach: number): string[] {
    const v = this.value(key);
    if (!Array.isArray(v))
      fail(`${this.where}.${key} must be an array of strings, got ${v === undefined ? 'nothing' : describe(v)}.`);
    if (v.length > maxItems) fail(`${this.where}.${key} has more than ${maxItems} items.`);
    v.forEach((item, i) => {
      if (typeof item !== 'string') fail(`${this.where}.${key}[${i}] must be a string, got ${describe(item)}.`);
      if (item.length > maxEach) fail(`${this.where}.${key}[${i}] is longer than ${maxEach} characters.`);
      if (item.includes('\0')) fail(`${this.where}.${key}[${i}] must not contain a NUL character.`);
    });
    return v as string[];
  }

  optStringArray(key: string, maxItems: number, maxEach: number): string[] | undefined {
    return this.value(key) === undefined ? undefined : this.stringArray(key, maxItems, maxEach);
  }

  bytes(key: string): Uint8Array {
    const v = this.value(key);
    if (!(v instanceof Uint8Array))
      fail(`${this.where}.${key} must be binary (bin), got ${v === undefined ? 'nothing' : describe(v)}.`);
    return v;
  }

  /** [time, stream, count] triples of a LogBatch. */
  logRuns(key: string): number[] {
    const v = this.value(key);
    if (!Array.isArray(v) || v.length % 3 !== 0)
      fail(`${this.where}.${key} must be an array of [time, stream, count] triples.`);
    for (let i = 0; i < v.length; i += 3) {
      const [time, stream, count] = [v[i], v[i + 1], v[i + 2]] as unknown[];
      if (typeof time !== 'number' || !Number.isFinite(time)) fail(`${this.where}.${key}[${i}] must be a time in ms.`);
      if (stream !== 0 && stream !== 1 && stream !== 2)
        fail(`${this.where}.${key}[${i + 1}] must be a stream: 0, 1 or 2.`);
      if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)
        fail(`${this.where}.${key}[${i + 2}] must be a line count.`);
    }
    return v as number[];
  }

  raw(key: string): unknown {
    return this.value(key);
  }

  name(key: string): string {
    // Too long is a bad name like any other: BAD_SERVICE_NAME, not a generic BAD_REQUEST.
    const v = this.string(key);
    if (!NAME_PATTERN.test(v) || v.includes('..')) {
      throw new AdiError(
        'BAD_SERVICE_NAME',
        `${this.where}.${key} ${JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v)} is not a valid name${v.length > 64 ? ` (${v.length} characters)` : ''}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit, with no '..'.`,
      );
    }
    return v;
  }
}

const REQUEST_SET: ReadonlySet<string> = new Set(REQUEST_TYPES);
const RESPONSE_SET: ReadonlySet<string> = new Set(RESPONSE_TYPES);

/**
 * A request as the daemon holds it once parseRequest has checked it: a StartService config is
 * validated and normalised here, at the boundary, and nowhere after (the type says so).
 */
export type CheckedRequest =
  | Exclude<Request, { type: 'StartService' }>
  | { type: 'StartService'; name: string; config: NormalizedConfig | null };
export type CheckedRequestOf<T extends RequestType> = Extract<CheckedRequest, { type: T }>;

/** The outcome of checking one decoded request frame: the id is kept even when the rest is bad, so the Error can carry it. */
export type ParsedRequest =
  | { ok: true; id: number; request: CheckedRequest }
  | { ok: false; id: number | null; error: AdiError };

export const MAX_ID = 0xffffffff;

export function parseRequest(value: unknown): ParsedRequest {
  if (!isPlainObject(value)) {
    return {
      ok: false,
      id: null,
      error: new AdiError('BAD_REQUEST', `A request must be a map with "id" and "type", got ${describe(value)}.`),
    };
  }
  const rawId = value['id'];
  const id = typeof rawId === 'number' && Number.isInteger(rawId) && rawId >= 0 && rawId <= MAX_ID ? rawId : null;
  if (id === null) {
    return {
      ok: false,
      id: null,
      error: new AdiError('BAD_REQUEST', `request.id must be an integer from 0 to ${MAX_ID}.`),
    };
  }
  try {
    return { ok: true, id, request: validateRequestBody(value) };
  } catch (err) {
    return { ok: false, id, error: err instanceof AdiError ? err : new AdiError('BAD_REQUEST', String(err)) };
  }
}

function validateRequestBody(obj: Obj): CheckedRequest {
  const type = obj['type'];
  if (typeof type !== 'string') fail(`request.type must be a string naming the request, e.g. "Ping".`);
  if (!REQUEST_SET.has(type)) {
    throw new AdiError(
      'UNKNOWN_REQUEST',
      `Unknown request type ${JSON.stringify(type.slice(0, 64))}; known: ${REQUEST_TYPES.join(', ')}.`,
    );
  }
  const f = new Fields(obj, type);
  switch (type as RequestType) {
    case 'Hello': {
      const token = f.optString('token', LIMITS.token);
      return {
        type: 'Hello',
        protocol: f.int('protocol', 0, MAX_ID),
        client: f.string('client', LIMITS.clientName),
        token: token ?? null,
      };
    }
    case 'Ping':
      return { type: 'Ping' };
    case 'Shutdown':
      return { type: 'Shutdown', graceful: f.bool('graceful') };
    case 'StartService': {
      const name = f.name('name');
      const raw = f.raw('config');
      if (raw === undefined || raw === null) return { type: 'StartService', name, config: null };
      // The same check as the services file's and a manifest's: one schema, one set of limits.
      const result = validateServiceConfig(raw);
      if (result.config === null) throw configError(`service "${name}"`, result.errors);
      return { type: 'StartService', name, config: result.config };
    }
    case 'StopService':
      return { type: 'StopService', name: f.name('name'), force: f.bool('force') };
    case 'RestartService':
      return { type: 'RestartService', name: f.name('name') };
    case 'ListServices':
      return { type: 'ListServices' };
    case 'ServiceLogs':
      return {
        type: 'ServiceLogs',
        name: f.name('name'),
        lines: f.int('lines', 0, LIMITS.logLines),
        follow: f.bool('follow'),
        cursor: f.optString('cursor', 100) ?? null,
      };
    case 'Run':
      return {
        type: 'Run',
        command: f.string('command', LIMITS.command, { nonEmpty: true }),
        args: f.stringArray('args', LIMITS.args, LIMITS.arg),
        timeout_secs: f.optNumber('timeout_secs', 0.001, 86_400) ?? null,
        max_output_bytes: f.optInt('max_output_bytes', 0, 2 ** 40) ?? null,
      };
    case 'SudoRun':
      return {
        type: 'SudoRun',
        command: f.string('command', LIMITS.command, { nonEmpty: true }),
        args: f.stringArray('args', LIMITS.args, LIMITS.arg),
        reason: f.string('reason', LIMITS.reason),
        timeout_secs: f.optNumber('timeout_secs', 0.001, 86_400) ?? null,
        max_output_bytes: f.optInt('max_output_bytes', 0, 2 ** 40) ?? null,
      };
    case 'Cancel':
      return { type: 'Cancel', target: f.int('target', 0, MAX_ID) };
    case 'Reload':
      return { type: 'Reload' };
  }
}

function validateServiceInfo(value: unknown, where: string): ServiceInfo {
  if (!isPlainObject(value)) fail(`${where} must be a map.`);
  const f = new Fields(value, where);
  const state = f.string('state', 32);
  if (!(SERVICE_STATES as readonly string[]).includes(state))
    fail(`${where}.state ${JSON.stringify(state)} is not a service state.`);
  const source = f.string('source', 32);
  if (source !== 'file' && source !== 'plugin' && source !== 'adhoc')
    fail(`${where}.source ${JSON.stringify(source)} is unknown.`);
  return {
    name: f.string('name', 64),
    state: state as ServiceInfo['state'],
    pid: f.optInt('pid', 0, MAX_ID) ?? null,
    uptime_secs: f.optNumber('uptime_secs', 0, Number.MAX_SAFE_INTEGER) ?? null,
    restarts: f.int('restarts', 0, Number.MAX_SAFE_INTEGER),
    last_error: f.optString('last_error') ?? null,
    exit_code: f.optInt('exit_code', -(2 ** 31), 2 ** 31) ?? null,
    exit_signal: f.optString('exit_signal', 32) ?? null,
    source,
    cpu_percent: f.optNumber('cpu_percent', 0, 1e6) ?? null,
    memory_bytes: f.optNumber('memory_bytes', 0, Number.MAX_SAFE_INTEGER) ?? null,
    ...present('plugin', f.optString('plugin', 64)),
    ...present('conflicts', f.optStringArray('conflicts', LIMITS.conflicts, LIMITS.string)),
  };
}

/** `{ [key]: value }` when the optional field was sent, else nothing (the field stays absent). */
function present<K extends string, V>(key: K, value: V | null | undefined): { [P in K]?: V } {
  return (value === undefined || value === null ? {} : { [key]: value }) as { [P in K]?: V };
}

function validatePluginSocket(value: unknown): PluginSocketStatus | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) fail(`Pong.plugin_socket must be a map, got ${describe(value)}.`);
  const f = new Fields(value, 'Pong.plugin_socket');
  const state = f.string('state', 32);
  if (!(PLUGIN_SOCKET_STATES as readonly string[]).includes(state))
    fail(`Pong.plugin_socket.state ${JSON.stringify(state)} is unknown.`);
  return {
    state: state as PluginSocketStatus['state'],
    address: f.optString('address', 4096) ?? null,
    error: f.optString('error') ?? null,
  };
}

/** Bounds of the configuration and problem reports: a daemon keeps at most 50 of each, up to 4 KiB. */
const REPORT_ITEMS = 100;
const REPORT_CHARS = 16 * 1024;
const NAMES = 100_000;

function reports(f: Fields): { config_errors?: string[]; problems?: string[] } {
  const config = f.optStringArray('config_errors', REPORT_ITEMS, REPORT_CHARS);
  const problems = f.optStringArray('problems', REPORT_ITEMS, REPORT_CHARS);
  return {
    ...(config !== undefined ? { config_errors: config } : {}),
    ...(problems !== undefined ? { problems } : {}),
  };
}

function validateReloadReport(value: unknown): ReloadReport {
  if (!isPlainObject(value)) fail('Ok.reload must be a map.');
  const f = new Fields(value, 'Ok.reload');
  return {
    added: f.stringArray('added', NAMES, 64),
    removed: f.stringArray('removed', NAMES, 64),
    changed: f.stringArray('changed', NAMES, 64),
    kept: f.stringArray('kept', NAMES, 64),
    unchanged: f.int('unchanged', 0, MAX_ID),
    errors: f.stringArray('errors', REPORT_ITEMS, REPORT_CHARS),
    ...present('conflicts', f.optStringArray('conflicts', REPORT_ITEMS, REPORT_CHARS)),
  };
}

/** An Error's data: known fields are checked, unknown ones dropped (a newer daemon may send more). */
function validateErrorData(value: unknown): ErrorData {
  if (!isPlainObject(value)) fail(`Error.data must be a map, got ${describe(value)}.`);
  const f = new Fields(value, 'Error.data');
  return {
    ...present('errno', f.optString('errno', 64)),
    ...present('rule', f.optString('rule', 64)),
    ...present('command', f.optStringArray('command', LIMITS.args + 1, LIMITS.arg)),
    ...present('patterns', f.optStringArray('patterns', REPORT_ITEMS * 10, LIMITS.arg)),
    ...present('pattern', f.optString('pattern', LIMITS.arg)),
  };
}

/** Client side: check a response frame. Throws BAD_FRAME for anything that is not a valid response. */
export function parseResponse(value: unknown): { id: number; response: Response } {
  try {
    if (!isPlainObject(value)) fail(`A response must be a map, got ${describe(value)}.`);
    const id = new Fields(value, 'response').int('id', 0, MAX_ID);
    const type = value['type'];
    if (typeof type !== 'string' || !RESPONSE_SET.has(type)) fail(`Unknown response type ${JSON.stringify(type)}.`);
    const f = new Fields(value, type);
    let response: Response;
    switch (type as ResponseType) {
      case 'Welcome':
        response = {
          type: 'Welcome',
          protocol: f.int('protocol', 0, MAX_ID),
          version: f.string('version', 100),
          identity: f.string('identity', 200),
        };
        break;
      case 'Pong':
        response = {
          type: 'Pong',
          uptime_secs: f.number('uptime_secs', 0, Number.MAX_SAFE_INTEGER),
          version: f.string('version', 100),
          pid: f.int('pid', 0, MAX_ID),
          protocol: f.int('protocol', 0, MAX_ID),
          separation: f.optBool('separation') ?? false,
          ...present('plugin_socket', validatePluginSocket(f.raw('plugin_socket'))),
          ...present('conflicts', f.optStringArray('conflicts', LIMITS.conflicts, LIMITS.string)),
          ...reports(f),
        };
        break;
      case 'Ok': {
        const reload = f.raw('reload');
        const config = f.optStringArray('config_errors', REPORT_ITEMS, REPORT_CHARS);
        const service = f.raw('service');
        response = {
          type: 'Ok',
          ...(reload === undefined || reload === null ? {} : { reload: validateReloadReport(reload) }),
          ...(config !== undefined ? { config_errors: config } : {}),
          ...(service === undefined || service === null ? {} : { service: validateServiceInfo(service, 'Ok.service') }),
        };
        break;
      }
      case 'Error': {
        const data = f.raw('data');
        response = {
          type: 'Error',
          code: f.string('code', 64),
          message: f.string('message', LIMITS.string),
          ...(data === undefined || data === null ? {} : { data: validateErrorData(data) }),
        };
        break;
      }
      case 'Services': {
        const list = f.raw('list');
        if (!Array.isArray(list)) fail('Services.list must be an array.');
        response = {
          type: 'Services',
          list: list.map((item, i) => validateServiceInfo(item, `Services.list[${i}]`)),
          ...present('conflicts', f.optStringArray('conflicts', LIMITS.conflicts, LIMITS.string)),
          ...reports(f),
        };
        break;
      }
      case 'LogBatch':
        response = {
          type: 'LogBatch',
          data: f.bytes('data'),
          runs: f.logRuns('runs'),
          cursor: f.string('cursor', 100),
        };
        break;
      case 'StreamEnd': {
        const cursor = f.optString('cursor', 100);
        response = cursor == null ? { type: 'StreamEnd' } : { type: 'StreamEnd', cursor };
        break;
      }
      case 'CommandResult':
        response = {
          type: 'CommandResult',
          exit_code: f.int('exit_code', -(2 ** 31), 2 ** 31),
          stdout: f.bytes('stdout'),
          stderr: f.bytes('stderr'),
          signal: f.optString('signal', 32) ?? null,
        };
        break;
    }
    return { id, response };
  } catch (err) {
    if (err instanceof AdiError) throw new AdiError('BAD_FRAME', `The daemon sent an invalid response: ${err.message}`);
    throw err;
  }
}
