// The wire protocol's types. They are the wire: field names are snake_case, a frame's
// MessagePack map has exactly these keys, and nothing is renamed between the socket and the code.
// docs/protocol.md is the normative description; keep the two in step.

import type { ErrorData } from '../core/errors.js';

export type { ErrorData };

/** Bumped on any incompatible change to frames, envelopes or variants. */
export const PROTOCOL_VERSION = 1;

/** Largest frame body the daemon accepts or sends, in bytes (a u32 length prefix precedes it). */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

export type ServiceState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'failed';

export const SERVICE_STATES: readonly ServiceState[] = [
  'starting',
  'running',
  'backoff',
  'stopping',
  'stopped',
  'failed',
];

// A service's configuration. src/protocol/config-schema.ts declares each field's bounds, default and
// meaning, and does not compile unless it has exactly these fields with these types.

/** A health probe: exactly one of `command`, `tcp`, `http`. */
export interface HealthCheck {
  /** argv run without a shell; exit status 0 means healthy. */
  command?: string[];
  /** A TCP port on 127.0.0.1 (or "host:port") that must accept a connection. */
  tcp?: number | string;
  /** An http:// URL that must answer with a status below 400. */
  http?: string;
  /** Seconds between probes. */
  interval_secs?: number;
  /** Seconds one probe may take. */
  timeout_secs?: number;
  /** Consecutive failures that count as unhealthy. */
  failure_threshold?: number;
}

/** How to run a service. Only `command` is required; nil or an absent field takes the schema's default. */
export interface ServiceConfig {
  command: string;
  args?: string[];
  env?: Record<string, string>;
  working_dir?: string | null;
  /** Restart when the process exits on its own. */
  restart_on_failure?: boolean;
  /** Automatic restarts allowed within the restart window. */
  max_restarts?: number;
  /** Run through ADI_ROOT_USER's sudo instead of as ADI_USER (admin only). */
  privileged?: boolean;
  /** Seconds between SIGTERM and SIGKILL when stopping. */
  stop_timeout?: number;
  /** The service says it is ready by writing a line to the fd named in $ADI_READY_FD. */
  ready_notify?: boolean;
  /** A probe that must pass before the service counts as running. */
  readiness?: HealthCheck | null;
  /** A probe that, failing, restarts the service under its restart policy. */
  liveness?: HealthCheck | null;
  /** Rotate the service's log past this many bytes; nil: the log module's default. */
  log_max_bytes?: number | null;
  /** Rotated log files kept besides the live one; nil: the log module's default. */
  log_max_files?: number | null;
  /** Processes (threads included) the service may have; nil: none (a plugin's service always has one). */
  pids_max?: number | null;
  /** Bytes each of the service's processes may allocate (RLIMIT_DATA); nil: none. */
  memory_max?: number | null;
}

export interface ServiceInfo {
  name: string;
  state: ServiceState;
  pid: number | null;
  uptime_secs: number | null;
  /** Automatic restarts since a user last started the service. */
  restarts: number;
  last_error: string | null;
  /** How the last run ended: its exit code, or the signal that killed it. */
  exit_code: number | null;
  exit_signal: string | null;
  /** Where the definition came from. */
  source: 'file' | 'plugin' | 'adhoc';
  /** The plugin that owns the service; only for source 'plugin'. */
  plugin?: string;
  /** Other definitions of this name that were not loaded, one line each; absent when there are none. */
  conflicts?: string[];
  /** CPU use of the whole process group over the last sample, percent of one core; null when unknown. */
  cpu_percent: number | null;
  /** Resident memory of the whole process group in bytes; null when unknown. */
  memory_bytes: number | null;
}

// ---------------------------------------------------------------------------------------------------
// Requests. On the wire each is a map { id, type, ...fields }.

export interface Hello {
  type: 'Hello';
  /** The PROTOCOL_VERSION the client speaks. */
  protocol: number;
  /** Free text naming the client, for the daemon's log ("adi-cli/0.1.0"). */
  client: string;
  /** Identity token: the admin token file's contents, or a plugin service's $ADI_DAEMON_TOKEN. */
  token?: string | null;
}

export interface Ping {
  type: 'Ping';
}
export interface Shutdown {
  type: 'Shutdown';
  graceful: boolean;
}
export interface StartService {
  type: 'StartService';
  name: string;
  config?: ServiceConfig | null;
}
export interface StopService {
  type: 'StopService';
  name: string;
  force: boolean;
}
export interface RestartService {
  type: 'RestartService';
  name: string;
}
export interface ListServices {
  type: 'ListServices';
}
export interface ServiceLogs {
  type: 'ServiceLogs';
  name: string;
  /** How many of the service's last lines (its notes between them are sent too and do not count). */
  lines: number;
  follow: boolean;
  /** Start after this position (a LogBatch's or StreamEnd's `cursor`) instead of the last `lines`. */
  cursor?: string | null;
}
export interface Run {
  type: 'Run';
  command: string;
  args: string[];
  /** Optional lower bounds than the daemon's own limits. */
  timeout_secs?: number | null;
  max_output_bytes?: number | null;
}
export interface SudoRun {
  type: 'SudoRun';
  command: string;
  args: string[];
  reason: string;
  timeout_secs?: number | null;
  max_output_bytes?: number | null;
}
/** Ends the stream started by request `target` on this connection (answered by Ok). */
export interface Cancel {
  type: 'Cancel';
  target: number;
}
/** Re-read the services file. */
export interface Reload {
  type: 'Reload';
}

export type Request =
  | Hello
  | Ping
  | Shutdown
  | StartService
  | StopService
  | RestartService
  | ListServices
  | ServiceLogs
  | Run
  | SudoRun
  | Cancel
  | Reload;

export type RequestType = Request['type'];
export type RequestOf<T extends RequestType> = Extract<Request, { type: T }>;

export const REQUEST_TYPES: readonly RequestType[] = [
  'Hello',
  'Ping',
  'Shutdown',
  'StartService',
  'StopService',
  'RestartService',
  'ListServices',
  'ServiceLogs',
  'Run',
  'SudoRun',
  'Cancel',
  'Reload',
];

// ---------------------------------------------------------------------------------------------------
// Responses. On the wire each is a map { id, type, ...fields }; `id` is the request's.

export interface Welcome {
  type: 'Welcome';
  protocol: number;
  /** The daemon's package version. */
  version: string;
  /** Who the daemon takes this connection for: "admin", "plugin:<name>" or "anonymous". */
  identity: string;
}
export interface Pong {
  type: 'Pong';
  uptime_secs: number;
  version: string;
  pid: number;
  protocol: number;
  /** Whether privilege separation (adi / adi-root users) is active. */
  separation: boolean;
  /** The plugin socket; absent when there is none (separation is not active) or from an older daemon. */
  plugin_socket?: PluginSocketStatus;
  /** Every service name defined more than once, one line each (see Services.conflicts); absent: none. */
  conflicts?: string[];
  /** Errors in the service definitions (services.toml, plugins) at their last load; absent: none. */
  config_errors?: string[];
  /** What is degraded now (the state file cannot be written, the disk reserve was used, ...); absent: nothing. */
  problems?: string[];
}

/**
 * Whether plugin services can reach the daemon (when separation is active). `pending`: not tried yet
 * (the daemon has just started); `failed`: it could not be bound.
 */
export interface PluginSocketStatus {
  state: 'pending' | 'listening' | 'failed';
  /** Where it listens (`listening`) or should (`failed`). */
  address: string | null;
  /** Why it is not listening (`failed`), or why it listens somewhere else than the usual place. */
  error: string | null;
}

export const PLUGIN_SOCKET_STATES: readonly PluginSocketStatus['state'][] = ['pending', 'listening', 'failed'];

/** What a Reload did (in Ok). */
export interface ReloadReport {
  added: string[];
  removed: string[];
  changed: string[];
  /** Services whose new definition is invalid or unreadable: they keep (and keep running) their last valid one. */
  kept: string[];
  unchanged: number;
  /** The definitions' errors (file, service, field, hint); non-empty: the reload did not apply everything. */
  errors: string[];
  /** Service names several sources define, one line each (as in Pong); absent: none. Not errors in a definition. */
  conflicts?: string[];
}
export interface Ok {
  type: 'Ok';
  /** Present in the answer to a Reload. */
  reload?: ReloadReport;
  /** In the answer to a StartService by name: the errors of the service's newer, invalid definition (it runs its last valid one). */
  config_errors?: string[];
  /** In the answer to StartService and RestartService: the service once its process is spawned. */
  service?: ServiceInfo;
}
export interface ErrorResponse {
  type: 'Error';
  code: string;
  message: string;
  data?: ErrorData;
}
export interface Services {
  type: 'Services';
  list: ServiceInfo[];
  /** Every service name defined more than once, one line each, including names nobody got; absent: none. */
  conflicts?: string[];
  /** As in Pong. */
  config_errors?: string[];
  problems?: string[];
}
/**
 * Lines of a service's log: `data` holds their bytes as the service wrote them, each line followed by
 * '\n' (a line never contains one); `runs` is a flat list of [time (ms since the epoch), stream (0
 * stdout, 1 stderr, 2 the supervisor's note), count] saying, in order, when each line ended and where it
 * came from. `cursor` is the position after these lines, to resume from.
 */
export interface LogBatch {
  type: 'LogBatch';
  data: Uint8Array;
  runs: number[];
  cursor: string;
}
/** The end of a stream. A ServiceLogs stream gives the position after its last line. */
export interface StreamEnd {
  type: 'StreamEnd';
  cursor?: string | null;
}
export interface CommandResult {
  type: 'CommandResult';
  exit_code: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** The signal that ended the command, if one did (exit_code is then 128 + its number). */
  signal?: string | null;
}
/** The executor's refusal of a SudoRun; it travels as an Error with code SUDO_DENIED, never as a frame of its own. */
export interface SudoDenied {
  type: 'SudoDenied';
  reason: string;
  /** The Error frame's data: the rule that refused, and the command and patterns it concerned. */
  data: ErrorData;
}

export type Response = Welcome | Pong | Ok | ErrorResponse | Services | LogBatch | StreamEnd | CommandResult;

export type ResponseType = Response['type'];

export const RESPONSE_TYPES: readonly ResponseType[] = [
  'Welcome',
  'Pong',
  'Ok',
  'Error',
  'Services',
  'LogBatch',
  'StreamEnd',
  'CommandResult',
];
