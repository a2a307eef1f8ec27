// DaemonClient: the API plugins and the CLI use to talk to the daemon.
// One persistent, multiplexed connection, opened on first use and reopened after the daemon restarts;
// every call has a timeout; failures are AdiError with a stable code.

import fs from 'node:fs';
import { AdiError } from '../core/errors.js';
import { resolvePaths, type Paths } from '../core/paths.js';
import { formatLogLine } from '../protocol/log-line.js';
import { countLines, LOG_STREAMS, splitBatch, type LogStreamName } from '../protocol/log-batch.js';
import { REQUESTS, type AnswerTo } from '../protocol/requests.js';
import type {
  CommandResult,
  Pong,
  ReloadReport,
  Request,
  Response,
  ServiceConfig,
  ServiceInfo,
  Services,
} from '../protocol/types.js';
import { packageVersion } from '../core/version.js';
import { ClientConnection, remoteError } from './connection.js';

export interface DaemonClientOptions {
  /** Environment the paths are resolved from (ADI_DAEMON_SOCKET, XDG_DATA_HOME, ...); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Per-call timeout in ms (default 10 s). */
  timeoutMs?: number;
  /** Connect timeout in ms (default 2 s). */
  connectTimeoutMs?: number;
  /** Identity token; default $ADI_DAEMON_TOKEN, else the admin token file when readable. */
  token?: string | null;
  /** Shown in the daemon's log. */
  clientName?: string;
}

export interface LogOptions {
  /** How many past lines (default 100; 10 when following). Ignored with `cursor`. */
  lines?: number;
  /** Start after this position (LogStream.cursor of an earlier read) instead of the last `lines`. */
  cursor?: string | null;
}

export interface LogEntry {
  /** When the line ended, ms since the epoch. */
  time: number;
  stream: LogStreamName;
  /** The line's bytes exactly as the service wrote them (any bytes but '\n'). */
  text: Buffer;
}

/** Batches of log lines, in order; `cursor` is the position after the last batch taken from it. */
export interface LogStream<T = LogEntry[]> extends AsyncIterable<T> {
  readonly cursor: string | null;
}

/**
 * A batch as it travels: the lines' bytes, each followed by '\n', and runs of [time, stream, count]
 * (stream 0 stdout, 1 stderr, 2 note). For readers that format many lines at once (the CLI).
 */
export interface RawLogBatch {
  data: Buffer;
  runs: number[];
}

/** Queued bytes of a log stream past which the client stops reading its socket until they are taken. */
const LOG_QUEUE_BYTES = 8 * 1024 * 1024;

export type PongInfo = Omit<Pong, 'type'>;

/** What startService() resolves with. */
export interface StartedService {
  /** The service once its process was spawned (its pid, its state). */
  service: ServiceInfo;
  /** The errors of the service's newer, invalid definition (it started with its last valid one); empty: none. */
  configErrors: string[];
}

function isUndelivered(err: unknown): boolean {
  return (
    err instanceof AdiError &&
    err.code === 'CONNECTION_CLOSED' &&
    (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EPIPE'
  );
}

/**
 * Calls whose answer legitimately takes long get a wait to match, instead of the per-call timeout: a
 * stop waits for the service's stop_timeout (at most 3600 s), a command for its own time limit.
 */
const STOP_WAIT_MS = 3_660_000;
function commandWaitMs(timeoutSecs: number | undefined): number {
  // Without a limit of its own, a command is bounded by the daemon's (60 s by default, configurable).
  return ((timeoutSecs ?? 3600) + 10) * 1000;
}

export class DaemonClient {
  readonly paths: Paths;
  private readonly env: NodeJS.ProcessEnv;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly explicitToken: string | null | undefined;
  private readonly clientName: string;
  private connection: Promise<ClientConnection> | null = null;
  /** The connection once open, so a call on it needs no promise round to get it. */
  private ready: ClientConnection | null = null;

  constructor(options: DaemonClientOptions = {}) {
    this.env = options.env ?? process.env;
    this.paths = resolvePaths({ env: this.env });
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.explicitToken = options.token;
    this.clientName = options.clientName ?? `adi-daemon-client/${packageVersion()}`;
  }

  /** The daemon's version from the handshake, once connected. */
  async daemonVersion(): Promise<string> {
    const conn = await this.connect();
    return (await conn.handshake).version;
  }

  /** Whether a daemon answers a ping (not merely whether a socket file exists). */
  async isRunning(): Promise<boolean> {
    try {
      await this.ping();
      return true;
    } catch (err) {
      if (err instanceof AdiError && (err.code === 'DAEMON_NOT_RUNNING' || err.code === 'CONNECTION_CLOSED'))
        return false;
      throw err;
    }
  }

  /** Start the daemon in the background if none answers, and wait (bounded) until it does. */
  async ensureRunning(options: { timeoutMs?: number } = {}): Promise<PongInfo> {
    try {
      return await this.ping();
    } catch (err) {
      if (!(err instanceof AdiError) || err.code !== 'DAEMON_NOT_RUNNING') throw err;
    }
    return this.startDaemon(options.timeoutMs ?? 10_000);
  }

  /**
   * Connect, starting the daemon if none answers, and resolve with its version from the handshake:
   * when it already runs, nothing is sent but Hello, so a command's own request is the only other one.
   */
  async ensureConnected(options: { timeoutMs?: number } = {}): Promise<string> {
    try {
      return await this.daemonVersion();
    } catch (err) {
      if (!(err instanceof AdiError) || err.code !== 'DAEMON_NOT_RUNNING') throw err;
    }
    return (await this.startDaemon(options.timeoutMs ?? 10_000)).version;
  }

  private async startDaemon(timeoutMs: number): Promise<PongInfo> {
    // Loaded only when the daemon must be started: child_process (and what spawn.ts needs) is not
    // part of every command's start-up.
    const { spawnDaemon } = await import('./spawn.js');
    const spawned = spawnDaemon(this.paths, this.env);
    return this.waitUntilRunning(timeoutMs, spawned.exited, spawned.failed);
  }

  /**
   * Poll with a short, growing interval until a ping is answered or the deadline passes; a daemon
   * that reports a failed start (`failed`, see spawn.ts) ends the wait at once with its reason.
   */
  async waitUntilRunning(
    timeoutMs: number,
    exited?: Promise<number | null>,
    failed?: Promise<string>,
  ): Promise<PongInfo> {
    const deadline = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    void exited?.then((code) => (exitCode = code));
    let failure: string | undefined;
    void failed?.then((why) => (failure = why));
    let delay = 5;
    for (;;) {
      if (failure !== undefined) {
        throw new AdiError(
          'DAEMON_START_FAILED',
          `The daemon could not start: ${failure.replace(/\.$/, '')}. See its log: ${this.paths.logFile}`,
        );
      }
      try {
        return await this.ping();
      } catch (err) {
        if (!(err instanceof AdiError) || (err.code !== 'DAEMON_NOT_RUNNING' && err.code !== 'CONNECTION_CLOSED'))
          throw err;
      }
      if (Date.now() >= deadline) {
        const how = exitCode !== undefined ? ` (the daemon process exited with code ${exitCode})` : '';
        throw new AdiError(
          'DAEMON_START_FAILED',
          `The daemon did not answer within ${timeoutMs} ms${how}. See its log: ${this.paths.logFile}`,
        );
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 100);
    }
  }

  async ping(): Promise<PongInfo> {
    const { type: _type, ...info } = await this.call({ type: 'Ping' });
    return info;
  }

  async shutdown(graceful = true): Promise<void> {
    await this.call({ type: 'Shutdown', graceful });
  }

  /**
   * Start a defined service (no config) or an ad-hoc one; resolves once its process is spawned, with
   * the service then and, when its definition in its source is now invalid (it started with its last
   * valid one), that definition's errors.
   */
  async startService(name: string, config?: ServiceConfig | null): Promise<StartedService> {
    const { service, config_errors: errors } = await this.call({ type: 'StartService', name, config: config ?? null });
    return { service, configErrors: errors ?? [] };
  }

  /** Resolves once nothing of the service remains; that may take its whole stop_timeout (up to an hour). */
  async stopService(name: string, force = false): Promise<void> {
    await this.call({ type: 'StopService', name, force }, force ? this.timeoutMs : STOP_WAIT_MS);
  }

  /** Resolves with the service once its new process is spawned. */
  async restartService(name: string): Promise<ServiceInfo> {
    return (await this.call({ type: 'RestartService', name }, STOP_WAIT_MS)).service;
  }

  /** The listing with the daemon's reports: the definitions' errors and what is degraded. */
  async listServicesReport(): Promise<Omit<Services, 'type'>> {
    const { type: _type, ...rest } = await this.call({ type: 'ListServices' });
    return rest;
  }

  async listServices(): Promise<ServiceInfo[]> {
    return (await this.call({ type: 'ListServices' })).list;
  }

  /** Re-read the services file. */
  async reload(): Promise<ReloadReport> {
    return (await this.call({ type: 'Reload' })).reload;
  }

  /**
   * The last `lines` lines of a service's log (or those after `cursor`), each formatted
   * `<ISO time> <out|err|sys> <text>` with the text decoded as UTF-8. readServiceLogs() gives the bytes.
   */
  async serviceLogs(name: string, options: LogOptions = {}): Promise<string[]> {
    const out: string[] = [];
    for await (const batch of this.readServiceLogs(name, {
      lines: options.lines ?? 100,
      ...(options.cursor != null ? { cursor: options.cursor } : {}),
    })) {
      for (const e of batch) out.push(formatEntry(e));
    }
    return out;
  }

  /**
   * A service's log as it arrives, in batches: the last `lines` lines (or those after `cursor`), then,
   * with follow, each new line as it is written, until the loop is left (which cancels the stream) or
   * the daemon ends it. Every line arrives once: a reader that resumes from `cursor` misses none.
   */
  readServiceLogs(name: string, options: LogOptions & { follow?: boolean } = {}): LogStream {
    return this.logStream(name, options, (batch) =>
      splitBatch(batch).map((l) => ({ time: l.time, stream: LOG_STREAMS[l.stream] as LogStreamName, text: l.text })),
    );
  }

  /** readServiceLogs() with each batch as it travels, not split into lines (the fastest way to print many). */
  readServiceLogBatches(name: string, options: LogOptions & { follow?: boolean } = {}): LogStream<RawLogBatch> {
    return this.logStream(name, options, (batch) => {
      let lines = 0;
      for (let i = 2; i < batch.runs.length; i += 3) lines += batch.runs[i] as number;
      if (countLines(batch.data) !== lines || (batch.data.length > 0 && batch.data[batch.data.length - 1] !== 10))
        throw new Error('log batch: its data and its runs do not agree');
      return { data: batch.data, runs: batch.runs };
    });
  }

  private logStream<T>(
    name: string,
    options: LogOptions & { follow?: boolean },
    convert: (batch: RawLogBatch) => T,
  ): LogStream<T> {
    const follow = options.follow === true;
    const request: Request = {
      type: 'ServiceLogs',
      name,
      lines: options.lines ?? (follow ? 10 : 100),
      follow,
      cursor: options.cursor ?? null,
    };
    let iterator: (AsyncIterator<T> & { cursor: string | null }) | null = null;
    return {
      get cursor() {
        return iterator?.cursor ?? options.cursor ?? null;
      },
      [Symbol.asyncIterator]: () => (iterator = this.openLogStream(request, convert)),
    };
  }

  /** followServiceLogs: the last `lines` lines, then each new one, formatted as serviceLogs() does. */
  followServiceLogs(name: string, options: LogOptions = {}): AsyncIterable<string> {
    const stream = this.readServiceLogs(name, { ...options, follow: true });
    return {
      async *[Symbol.asyncIterator]() {
        for await (const batch of stream) for (const e of batch) yield formatEntry(e);
      },
    };
  }

  /** Run a command as the plugin user (or as the daemon's user without separation). */
  async run(
    command: string,
    args: string[] = [],
    options: { timeoutSecs?: number; maxOutputBytes?: number } = {},
  ): Promise<CommandResult> {
    return this.call(
      {
        type: 'Run',
        command,
        args,
        timeout_secs: options.timeoutSecs ?? null,
        max_output_bytes: options.maxOutputBytes ?? null,
      },
      commandWaitMs(options.timeoutSecs),
    );
  }

  /** Run an approved command as root through ADI_ROOT_USER's sudo. A refusal throws SUDO_DENIED. */
  async sudoRun(
    command: string,
    args: string[],
    reason: string,
    options: { timeoutSecs?: number; maxOutputBytes?: number } = {},
  ): Promise<CommandResult> {
    return this.call(
      {
        type: 'SudoRun',
        command,
        args,
        reason,
        timeout_secs: options.timeoutSecs ?? null,
        max_output_bytes: options.maxOutputBytes ?? null,
      },
      commandWaitMs(options.timeoutSecs),
    );
  }

  /** Close the connection; pending calls fail with CONNECTION_CLOSED. The client may be used again. */
  close(): void {
    const current = this.connection;
    this.connection = null;
    this.ready = null;
    current?.then(
      (c) => c.close(),
      () => undefined,
    );
  }

  /** Send any request and return its final response (Error responses reject). */
  request(request: Request, timeoutMs = this.timeoutMs): Promise<Response> {
    const ready = this.ready;
    const sent =
      ready !== null && ready.isOpen
        ? ready.call(request, timeoutMs)
        : this.connect().then((conn) => conn.call(request, timeoutMs));
    // A connection whose daemon has just gone (it exited, and we have not yet read the close) fails
    // the write with EPIPE: the request never reached anyone, so it is sent once more on a new
    // connection, which finds the restarted daemon or reports DAEMON_NOT_RUNNING.
    return sent.catch((err: unknown) => {
      if (!isUndelivered(err)) throw err;
      return this.connect().then((conn) => conn.call(request, timeoutMs));
    });
  }

  /**
   * Send a request and resolve with the answer the request table (protocol/requests.ts) declares for
   * it; an Error rejects with its code, any other answer is BAD_FRAME. Not for streams (ServiceLogs).
   */
  async call<R extends Exclude<Request, { type: 'Hello' | 'ServiceLogs' }>>(
    request: R,
    timeoutMs = this.timeoutMs,
  ): Promise<AnswerTo<R['type']>> {
    const response = await this.request(request, timeoutMs);
    const spec = REQUESTS[request.type];
    if (response.type !== spec.answer)
      throw new AdiError(
        'BAD_FRAME',
        `Expected ${spec.answer} from the daemon in answer to ${request.type}, got ${response.type}.`,
      );
    for (const field of spec.carries ?? []) {
      if ((response as unknown as Record<string, unknown>)[field] === undefined) {
        throw new AdiError(
          'BAD_FRAME',
          `The daemon's ${spec.answer} to ${request.type} lacks its "${field}" (a daemon of another version? run 'adi daemon start' to replace it).`,
        );
      }
    }
    return response as AnswerTo<R['type']>;
  }

  private token(): string | null {
    if (this.explicitToken !== undefined) return this.explicitToken;
    const fromEnv = this.env['ADI_DAEMON_TOKEN'];
    if (fromEnv) return fromEnv;
    try {
      return fs.readFileSync(this.paths.tokenFile, 'utf8').trim();
    } catch {
      return null;
    }
  }

  private connect(): Promise<ClientConnection> {
    if (this.connection) return this.connection;
    const attempt = ClientConnection.open(this.paths.socket, {
      token: () => this.token(),
      client: this.clientName,
      timeoutMs: this.connectTimeoutMs,
      onClose: () => {
        if (this.connection === attempt) {
          this.connection = null;
          this.ready = null;
        }
      },
    });
    this.connection = attempt;
    attempt.then(
      (conn) => {
        if (this.connection === attempt && conn.isOpen) this.ready = conn;
      },
      () => {
        if (this.connection === attempt) this.connection = null;
      },
    );
    return attempt;
  }

  private openLogStream<T>(
    request: Request,
    convert: (batch: RawLogBatch) => T,
  ): AsyncIterator<T> & { cursor: string | null } {
    const queue: Array<{ entries: T; bytes: number; cursor: string }> = [];
    let queued = 0;
    let paused = false;
    let done = false;
    let failure: AdiError | null = null;
    let wake: (() => void) | null = null;
    let streamId = -1;
    let conn: ClientConnection | null = null;
    let endCursor: string | null = null;
    const notify = (): void => {
      wake?.();
      wake = null;
    };
    const onFrame = (response: Response): boolean => {
      if (response.type === 'LogBatch') {
        let entries: T;
        try {
          const data = Buffer.isBuffer(response.data)
            ? response.data
            : Buffer.from(response.data.buffer, response.data.byteOffset, response.data.byteLength);
          entries = convert({ data, runs: response.runs });
        } catch (err) {
          failure = new AdiError(
            'BAD_FRAME',
            `The daemon sent an invalid response: ${err instanceof Error ? err.message : String(err)}`,
          );
          notify();
          return true;
        }
        queue.push({ entries, bytes: response.data.length, cursor: response.cursor });
        queued += response.data.length;
        // Stop reading while the consumer is behind: the daemon then holds back too (bounded both ends).
        if (queued > LOG_QUEUE_BYTES && !paused && conn !== null) {
          paused = true;
          conn.pauseReading();
        }
      } else if (response.type === 'StreamEnd') {
        done = true;
        endCursor = response.cursor ?? null;
      } else if (response.type === 'Error') failure = remoteError(response);
      else failure = new AdiError('BAD_FRAME', `Unexpected ${response.type} in a log stream.`);
      notify();
      return done || failure !== null;
    };
    const ready = this.connect().then((c) => {
      conn = c;
      // A tail always answers; a follow may wait for the first new line as long as it takes.
      streamId = c.stream(
        request,
        (request as { follow?: boolean }).follow === true ? null : this.timeoutMs,
        onFrame,
        (err) => {
          failure = err;
          notify();
        },
      );
    });
    const resume = (): void => {
      if (paused && queued <= LOG_QUEUE_BYTES / 2) {
        paused = false;
        conn?.resumeReading();
      }
    };
    const it = {
      cursor: (request as { cursor?: string | null }).cursor ?? null,
      next: async (): Promise<IteratorResult<T>> => {
        await ready;
        for (;;) {
          const batch = queue.shift();
          if (batch !== undefined) {
            queued -= batch.bytes;
            resume();
            it.cursor = batch.cursor;
            return { done: false, value: batch.entries };
          }
          if (failure) throw failure;
          if (done) {
            if (endCursor !== null) it.cursor = endCursor;
            return { done: true, value: undefined };
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        if (paused) {
          paused = false;
          conn?.resumeReading();
        }
        if (!done && failure === null && conn !== null && streamId >= 0) {
          done = true;
          (conn as ClientConnection).forget(streamId);
          // Tell the daemon to stop sending; its Ok is not awaited beyond the usual timeout.
          await (conn as ClientConnection)
            .call({ type: 'Cancel', target: streamId }, this.timeoutMs)
            .catch(() => undefined);
        }
        done = true;
        return { done: true, value: undefined };
      },
    };
    return it;
  }
}

/** `<ISO time> <stream> <text>`, the text decoded as UTF-8. */
export function formatEntry(e: LogEntry): string {
  return formatLogLine(new Date(e.time), e.stream, e.text.toString('utf8'));
}
