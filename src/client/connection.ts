// One multiplexed connection to the daemon: the handshake, request ids, per-call timeouts and stream
// routing. DaemonClient builds its API on this; nothing here knows what a request means.
//
// Hot path (see docs/performance.md): requests issued in the same run of the event loop leave in one
// write; answers are decoded straight from the read buffer; timeouts are kept as deadlines checked by
// one timer per connection, not a timer per call. The handshake is pipelined: Hello goes out with the
// first request that needs it, and that request follows at once (the daemon handles frames in order),
// so a CLI command costs one round trip, not two; if Hello fails, the connection closes and those
// requests fail with Hello's error. Ping needs no Hello (the daemon answers it before the handshake),
// so `adi daemon status` reads no token and sends one frame.

import type net from 'node:net';
import { AdiError, isErrorCode } from '../core/errors.js';
import type { Endpoint } from '../core/paths.js';
import {
  DEFAULT_MAX_FRAME,
  PROTOCOL_VERSION,
  type ErrorResponse,
  type Request,
  type Response,
  type Welcome,
} from '../protocol/types.js';
import { MAX_ID, parseResponse } from '../protocol/validate.js';
import { connect } from '../wire/transport.js';
import { decodeRange, encodeFrame } from '../wire/codec.js';
import { WriteBatch } from '../wire/batch.js';
import { FrameDecoder } from '../wire/framing.js';

/**
 * Monotonic milliseconds. Not performance.now(): its first use loads perf_hooks and about ten internal
 * modules that a CLI command has no other use for (a measurable part of `adi daemon status`).
 */
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Called with each frame of a request; returns true when the request is complete. */
type FrameHandler = (response: Response) => boolean;

interface Pending {
  /** A stream's frame handler; null for a call, whose one answer settles resolve / fail. */
  onFrame: FrameHandler | null;
  resolve: ((response: Response) => void) | null;
  fail: (err: AdiError) => void;
  /** nowMs() by which the (first) answer must come; Infinity for none. */
  deadline: number;
  type: Request['type'];
  timeoutMs: number | null;
}

export function remoteError(response: ErrorResponse): AdiError {
  const error = new AdiError(
    isErrorCode(response.code) ? response.code : 'INTERNAL',
    response.message,
    response.data !== undefined ? { data: response.data } : {},
  );
  (error as AdiError & { remoteCode: string }).remoteCode = response.code;
  return error;
}

export interface ConnectionOptions {
  /** Read when Hello is sent: a Ping-only connection never reads the token file. */
  token: () => string | null;
  client: string;
  timeoutMs: number;
  onClose: () => void;
}

export class ClientConnection {
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new FrameDecoder(DEFAULT_MAX_FRAME);
  private nextId = 1;
  private closedError: AdiError | null = null;
  /** Encoded requests waiting for the end of the current microtask run, and their size. */
  private readonly outgoing = new WriteBatch(() => this.flush());
  /** The one timeout timer, set for the earliest deadline among the pending requests. */
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private refed: boolean | null = null;
  welcome: Welcome | null = null;
  private hello: Promise<Welcome> | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly opts: ConnectionOptions,
  ) {
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.feed(chunk, this.onFrame);
      } catch (err) {
        this.close(err instanceof AdiError ? err : new AdiError('BAD_FRAME', String(err)));
      }
    });
    // The cause is kept: EPIPE means the daemon had already gone when we wrote (DaemonClient retries that once).
    socket.on('error', (err) =>
      this.close(new AdiError('CONNECTION_CLOSED', `Connection to the daemon failed: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => this.close(new AdiError('CONNECTION_CLOSED', 'The daemon closed the connection.')));
  }

  static async open(endpoint: Endpoint, opts: ConnectionOptions): Promise<ClientConnection> {
    const socket = await connect(endpoint, opts.timeoutMs);
    const conn = new ClientConnection(socket, opts);
    conn.updateRef();
    return conn;
  }

  /**
   * Settles with the daemon's Welcome (rejects, and the connection is closed, if Hello fails). Hello
   * is sent with the first request other than Ping, or when this is first read.
   */
  get handshake(): Promise<Welcome> {
    return this.hello ?? this.sendHello();
  }

  private sendHello(): Promise<Welcome> {
    // The handshake is the first frame that needs an identity; its id is 0 by convention.
    const hello = this.call(
      { type: 'Hello', protocol: PROTOCOL_VERSION, client: this.opts.client, token: this.opts.token() },
      this.opts.timeoutMs,
      0,
    ).then(
      (reply) => {
        if (reply.type !== 'Welcome') {
          const error = new AdiError('BAD_FRAME', `The daemon answered Hello with ${reply.type}.`);
          this.close(error);
          throw error;
        }
        this.welcome = reply;
        return reply;
      },
      (err: unknown) => {
        // Requests sent after Hello fail with its reason (e.g. VERSION_MISMATCH), not a bare "closed".
        this.close(err instanceof AdiError ? err : undefined);
        throw err;
      },
    );
    this.hello = hello;
    // Whoever waits on it sees the failure; an unobserved one must not become an unhandled rejection.
    hello.catch(() => undefined);
    return hello;
  }

  get isOpen(): boolean {
    return this.closedError === null;
  }

  /** One request, one final response (an Error response rejects). */
  call(request: Request, timeoutMs: number, fixedId?: number): Promise<Response> {
    return new Promise((resolve, reject) => {
      this.start(request, timeoutMs, fixedId, null, resolve, reject);
    });
  }

  /**
   * A request whose answer is a run of frames. `onFrame` returns true on the last one. The timeout
   * covers the wait for the first frame only (null: none). Returns the id, for Cancel.
   */
  stream(
    request: Request,
    firstFrameTimeoutMs: number | null,
    onFrame: FrameHandler,
    fail: (err: AdiError) => void,
  ): number {
    return this.start(request, firstFrameTimeoutMs, undefined, onFrame, null, fail);
  }

  private start(
    request: Request,
    timeoutMs: number | null,
    fixedId: number | undefined,
    onFrame: FrameHandler | null,
    resolve: ((response: Response) => void) | null,
    fail: (err: AdiError) => void,
  ): number {
    if (this.closedError) {
      fail(this.closedError);
      return -1;
    }
    if (this.hello === null && request.type !== 'Ping' && request.type !== 'Hello') void this.sendHello();
    const id = fixedId ?? this.allocateId();
    let bytes: Buffer;
    try {
      bytes = encodeFrame({ id, ...request }, DEFAULT_MAX_FRAME);
    } catch (err) {
      fail(err instanceof AdiError ? err : new AdiError('BAD_REQUEST', String(err)));
      return id;
    }
    const deadline = timeoutMs === null ? Infinity : nowMs() + timeoutMs;
    this.pending.set(id, { onFrame, resolve, fail, deadline, type: request.type, timeoutMs });
    if (deadline < this.timerAt) this.armTimer(deadline);
    this.updateRef();
    // The first request of a burst schedules the write; requests made in the same microtask run join it.
    this.outgoing.add(bytes);
    return id;
  }

  private flush(): void {
    const bytes = this.outgoing.take();
    if (bytes === null || this.closedError !== null) return;
    this.socket.write(bytes);
  }

  /** Stop reading from the daemon (a consumer of a stream is behind); resumeReading() goes on. */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** Forget a stream locally (after Cancel, frames still in transit are dropped). */
  forget(id: number): void {
    this.pending.delete(id);
    this.updateRef();
  }

  private allocateId(): number {
    // Ids wrap before u32 runs out, skipping 0 (the handshake's) and any still in flight.
    do {
      this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private readonly onFrame = (buf: Buffer, start: number, end: number): void => {
    let id: number;
    let response: Response;
    try {
      ({ id, response } = parseResponse(decodeRange(buf, start, end)));
    } catch (err) {
      this.close(err instanceof AdiError ? err : new AdiError('BAD_FRAME', String(err)));
      return;
    }
    const entry = this.pending.get(id);
    if (!entry) {
      // A connection-level error (id 0) after the handshake means the daemon is hanging up on us.
      if (id === 0 && response.type === 'Error') this.close(remoteError(response));
      return;
    }
    if (entry.onFrame === null) {
      this.pending.delete(id);
      this.updateRef();
      if (response.type !== 'Error') {
        entry.resolve?.(response);
        return;
      }
      const error = remoteError(response);
      entry.fail(error);
      // A refused Hello: the requests pipelined after it fail with its reason, now.
      if (id === 0) this.close(error);
      return;
    }
    // A stream: the timeout covered its first frame only.
    entry.deadline = Infinity;
    if (entry.onFrame(response)) {
      this.pending.delete(id);
      this.updateRef();
    }
  };

  /** (Re)arm the timeout timer for an earlier deadline. */
  private armTimer(deadline: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(this.sweep, Math.max(1, Math.ceil(deadline - nowMs())));
    // The socket keeps the process alive while requests are pending; the timer need not.
    this.timer.unref();
  }

  /** Fail the requests whose deadline has passed; re-arm for the next one. */
  private readonly sweep = (): void => {
    this.timer = null;
    this.timerAt = Infinity;
    const now = nowMs();
    let next = Infinity;
    for (const [id, entry] of this.pending) {
      if (entry.deadline <= now) {
        this.pending.delete(id);
        entry.fail(new AdiError('TIMEOUT', `The daemon did not answer ${entry.type} within ${entry.timeoutMs} ms.`));
      } else if (entry.deadline < next) {
        next = entry.deadline;
      }
    }
    this.updateRef();
    if (next < Infinity) this.armTimer(next);
  };

  close(reason: AdiError = new AdiError('CONNECTION_CLOSED', 'The client closed the connection.')): void {
    if (this.closedError) return;
    this.closedError = reason;
    this.outgoing.clear();
    this.socket.destroy();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) entry.fail(reason);
    this.opts.onClose();
  }

  /**
   * The socket keeps the process alive only while a request is pending, so a script that forgets
   * close() still exits once its work is done.
   */
  private updateRef(): void {
    const wanted = this.pending.size > 0;
    if (wanted === this.refed) return;
    this.refed = wanted;
    if (wanted) this.socket.ref();
    else this.socket.unref();
  }
}
