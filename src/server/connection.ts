// One client connection: frames in, requests validated and dispatched, responses out. Everything a
// connection may hold is bounded: bytes of a partial frame (the frame maximum), requests in flight
// (reading pauses past the bound), and unsent output (reading pauses, streams end past the bound).
//
// Hot path (see docs/performance.md): frames are decoded straight from the read buffer; a request's
// AbortController is made only if a handler asks for its signal; a synchronous handler's answer is
// sent at once; the answers of one burst of requests leave in one write (one syscall), gathered until
// the end of the current microtask run.

import type net from 'node:net';
import { AdiError, toAdiError } from '../core/errors.js';
import { PROTOCOL_VERSION, type Request, type Response } from '../protocol/types.js';
import { parseRequest } from '../protocol/validate.js';
import { decodeRange, encodeFrame } from '../wire/codec.js';
import { WriteBatch } from '../wire/batch.js';
import { FrameDecoder } from '../wire/framing.js';
import { ANONYMOUS, type Identity } from '../core/identity.js';
import { type DaemonState, type RequestContext } from './context.js';
import { handlerFor } from './dispatch.js';
import { REQUESTS, type Access } from '../protocol/requests.js';
import { noteStreamed, streamsChanged } from '../logs/reclaim.js';

export interface ConnectionLimits {
  maxFrame: number;
  /** Requests one connection may have in flight before the daemon stops reading from it. */
  maxInFlight: number;
  /** Time from connect to a valid Hello (or Ping) before the connection is closed. */
  handshakeTimeoutMs: number;
  /** Time a partly received frame may take to complete (a byte-a-second client is cut off). */
  frameTimeoutMs: number;
  /** Unsent bytes past which reading pauses and stream sends report failure. */
  outputHighWater: number;
}

export const DEFAULT_LIMITS: Omit<ConnectionLimits, 'maxFrame'> = {
  maxInFlight: 64,
  handshakeTimeoutMs: 10_000,
  frameTimeoutMs: 30_000,
  outputHighWater: 4 * 1024 * 1024,
};

export type Authenticate = (token: string | null) => Identity;

/**
 * What all streams together may leave unsent in the daemon. Each stream's share is this over the number
 * of streams, between STREAM_MIN_ROOM and STREAM_MAX_ROOM, so memory stays bounded (about this much
 * plus STREAM_MIN_ROOM per stream beyond 256 streams) however many followers stop reading.
 */
export const STREAM_BUDGET = 16 * 1024 * 1024;
const STREAM_MAX_ROOM = 1024 * 1024;
const STREAM_MIN_ROOM = 64 * 1024;
/**
 * Bytes of stream frames all streams together may build in one turn of the event loop, and per second.
 * Streams take turns (each at most one frame a turn, first come first served), and between turns the
 * loop reads the services' pipes and the clients' requests: followers, however many and however fast
 * they read, never starve log capture or a ping, and what they cost in copies and garbage is bounded.
 */
const STREAM_TURN_BYTES = 256 * 1024;
const STREAM_BYTES_PER_SEC = 64 * 1024 * 1024;
/** Streaming requests of all connections, for their share of STREAM_BUDGET. */
const activeStreams = new Set<InFlight>();
/** Streams whose connection can take a frame, waiting for their turn. */
const turnQueue: InFlight[] = [];
let turnScheduled = false;
let tokens = STREAM_TURN_BYTES;
let tokensAt = Date.now();

function queueForTurn(request: InFlight): void {
  turnQueue.push(request);
  scheduleTurn();
}

function scheduleTurn(): void {
  if (turnScheduled || turnQueue.length === 0) return;
  turnScheduled = true;
  if (tokens > 0) setImmediate(runTurn);
  else setTimeout(runTurn, Math.max(1, Math.ceil((-tokens / STREAM_BYTES_PER_SEC) * 1000)));
}

function runTurn(): void {
  turnScheduled = false;
  const now = Date.now();
  tokens = Math.min(STREAM_TURN_BYTES, tokens + ((now - tokensAt) * STREAM_BYTES_PER_SEC) / 1000);
  tokensAt = now;
  const waiting = turnQueue.length;
  for (let i = 0; i < waiting && tokens > 0; i++) tokens -= (turnQueue.shift() as InFlight).grant();
  scheduleTurn();
}

function streamShare(): number {
  return Math.max(
    STREAM_MIN_ROOM,
    Math.min(STREAM_MAX_ROOM, Math.floor(STREAM_BUDGET / Math.max(1, activeStreams.size))),
  );
}

/** Connection-level errors use id 0, which clients reserve for Hello: every Error with id 0 closes the connection. */
const CONNECTION_ID = 0;

const ACCESS_RANK: Record<Access, number> = { anyone: 0, plugin: 1, admin: 2 };

/** One request in flight: what its handler sees, and how it is cancelled. */
class InFlight implements RequestContext {
  private controller: AbortController | null = null;
  /** Set by cancel(), also when no handler has looked at the signal yet. */
  cancelled = false;

  constructor(
    readonly daemon: DaemonState,
    readonly identity: Identity,
    readonly id: number,
    private readonly conn: Connection,
  ) {}

  /** Made on first use: most handlers answer at once and never look at it. */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  /** Run once the final answer is written (or the connection is gone); see RequestContext.afterSend. */
  private sentHooks: (() => void)[] | null = null;

  afterSend(fn: () => void): void {
    if (this.conn.isClosed) fn();
    else (this.sentHooks ??= []).push(fn);
  }

  takeSentHooks(): (() => void)[] {
    const hooks = this.sentHooks ?? [];
    this.sentHooks = null;
    return hooks;
  }

  cancel(reason: AdiError): void {
    if (this.cancelled) return;
    this.cancelled = true;
    // Made now if need be: a handler that asks for the signal later still finds it aborted.
    this.controller ??= new AbortController();
    this.controller.abort(reason);
    this.wake();
  }

  send(response: Response): boolean {
    return !this.cancelled && this.conn.sendStreamFrame(this.id, response);
  }

  /** Set while the stream waits for the client to read what it was sent, or for its turn. */
  private waiting: ((room: number) => void) | null = null;
  private queued = false;

  streamRoom(): Promise<number> {
    if (this.cancelled) return Promise.resolve(0);
    if (!activeStreams.has(this)) {
      activeStreams.add(this);
      streamsChanged(activeStreams.size);
    }
    return new Promise<number>((resolve) => {
      this.waiting = resolve;
      this.check();
    });
  }

  /** Wait for a drain if the client is behind, else for a turn. */
  private check(): void {
    if (this.waiting === null || this.queued) return;
    if (this.cancelled) {
      this.settle(0);
      return;
    }
    // Half the share per frame: one frame can be built while the previous one is still being sent.
    if (this.conn.unsent >= streamShare() / 2) {
      this.conn.waitForDrain(this);
      return;
    }
    this.queued = true;
    queueForTurn(this);
  }

  /** Its turn: the bytes its next frame may carry (0 when it was cancelled meanwhile). */
  grant(): number {
    this.queued = false;
    const room = this.cancelled ? 0 : Math.floor(streamShare() / 2);
    this.settle(room);
    return room;
  }

  private settle(room: number): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.(room);
  }

  /** The connection drained (or closed), or the request was cancelled: a waiting stream goes on. */
  wake(): void {
    if (this.cancelled) {
      if (!this.queued) this.settle(0);
      return;
    }
    this.check();
  }

  /** The request is over: it no longer takes a share. */
  done(): void {
    if (activeStreams.delete(this)) streamsChanged(activeStreams.size);
    this.wake();
  }
}

const IDENTITY_RANK: Record<Identity['kind'], number> = { anonymous: 0, plugin: 1, admin: 2 };

export class Connection {
  private readonly decoder: FrameDecoder;
  private identity: Identity = ANONYMOUS;
  private greeted = false;
  private readonly inFlight = new Map<number, InFlight>();
  /** Encoded frames waiting for the end of the current microtask run, and their size. */
  private readonly outgoing = new WriteBatch(() => this.flush());
  private closed = false;
  /** afterSend hooks of the answers in the batch being gathered; they run once it is written. */
  private afterFlush: (() => void)[] = [];
  private paused = false;
  private handshakeTimer: NodeJS.Timeout | null;
  private frameTimer: NodeJS.Timeout | null = null;
  /** Streams waiting for the client to read. */
  private readonly drainWaiters = new Set<InFlight>();

  constructor(
    private readonly socket: net.Socket,
    private readonly daemon: DaemonState,
    private readonly authenticate: Authenticate,
    private readonly limits: ConnectionLimits,
    private readonly isShuttingDown: () => boolean,
  ) {
    this.decoder = new FrameDecoder(limits.maxFrame);
    this.handshakeTimer = setTimeout(
      () => this.abort('no Hello within the handshake timeout'),
      limits.handshakeTimeoutMs,
    );
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.updateFlow();
      this.wakeStreams();
    });
    socket.on('error', () => this.teardown());
    socket.on('close', () => this.teardown());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Close at once, ending every request in flight. */
  destroy(): void {
    this.socket.destroy();
    this.teardown();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.decoder.feed(chunk, this.onFrame);
    } catch (err) {
      // The frame stream is out of step (oversized header): say why, then hang up.
      this.sendError(CONNECTION_ID, toAdiError(err, 'BAD_FRAME'));
      this.abort('bad framing');
      return;
    }
    this.armFrameTimer();
  }

  private armFrameTimer(): void {
    if (!this.decoder.midFrame) {
      if (this.frameTimer) {
        clearTimeout(this.frameTimer);
        this.frameTimer = null;
      }
    } else if (!this.frameTimer) {
      this.frameTimer = setTimeout(
        () => this.abort('a frame did not complete within the frame timeout'),
        this.limits.frameTimeoutMs,
      );
    }
  }

  // An arrow property: handed to the decoder for every read without a closure per call.
  private readonly onFrame = (buf: Buffer, start: number, end: number): void => {
    if (this.closed) return;
    // A complete frame resets the slow-frame clock; the next partial frame starts its own.
    if (this.frameTimer) {
      clearTimeout(this.frameTimer);
      this.frameTimer = null;
    }
    let value: unknown;
    try {
      value = decodeRange(buf, start, end);
    } catch (err) {
      this.sendError(CONNECTION_ID, toAdiError(err, 'BAD_FRAME'));
      this.abort('undecodable frame');
      return;
    }
    const parsed = parseRequest(value);
    if (!parsed.ok) {
      this.sendError(parsed.id ?? CONNECTION_ID, parsed.error);
      // An error with id 0 cannot be told from a connection-level one: the connection ends with it.
      if (parsed.id === null || parsed.id === CONNECTION_ID)
        this.abort(parsed.id === null ? 'request without a valid id' : 'an invalid request with id 0');
      return;
    }
    if (parsed.id === CONNECTION_ID && parsed.request.type !== 'Hello') {
      this.sendError(
        CONNECTION_ID,
        new AdiError(
          'BAD_REQUEST',
          `Id 0 is reserved for Hello and connection-level errors; send ${parsed.request.type} with an id from 1 to 4294967295.`,
        ),
      );
      this.abort('a request other than Hello with id 0');
      return;
    }
    this.onRequest(parsed.id, parsed.request);
  };

  private onRequest(id: number, request: Request): void {
    switch (request.type) {
      case 'Hello':
        this.onHello(id, request.protocol, request.token ?? null);
        return;
      default:
        break;
    }
    if (!this.greeted && request.type !== 'Ping') {
      this.refuse(
        id,
        request,
        new AdiError('UNAUTHORIZED', `Send Hello first: only Ping is answered before the handshake.`),
      );
      return;
    }
    // A Ping meets the handshake deadline as Hello does: a status check may stay connected without one.
    if (this.handshakeTimer !== null && request.type === 'Ping') {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
    // A Cancel still ends a stream while the daemon stops: the client is tidying up, not starting work.
    if (this.isShuttingDown() && request.type !== 'Ping' && request.type !== 'Cancel') {
      this.sendError(
        id,
        new AdiError('SHUTTING_DOWN', 'The daemon is shutting down; try again once it has restarted.'),
      );
      return;
    }
    if (this.inFlight.has(id)) {
      this.sendError(
        id,
        new AdiError('BAD_REQUEST', `Request id ${id} is already in flight on this connection; use a new id.`),
      );
      return;
    }
    const access = REQUESTS[request.type].access;
    if (IDENTITY_RANK[this.identity.kind] < ACCESS_RANK[access]) {
      const code = this.identity.kind === 'anonymous' ? 'UNAUTHORIZED' : 'PERMISSION_DENIED';
      this.refuse(
        id,
        request,
        new AdiError(code, `${request.type} needs the ${access} identity; this connection is ${this.identity.label}.`),
      );
      return;
    }
    if (request.type === 'Cancel') {
      const target = this.inFlight.get(request.target);
      target?.cancel(new AdiError('CANCELLED', `Request ${request.target} was cancelled by the client.`));
      this.send(id, { type: 'Ok' });
      return;
    }
    const ctx = new InFlight(this.daemon, this.identity, id, this);
    let result: Promise<Response> | Response;
    try {
      result = handlerFor(request.type)(request as never, ctx);
    } catch (err) {
      this.send(id, this.errorResponse(request, err));
      return;
    }
    if (!(result instanceof Promise)) {
      // Answered at once (Ping, ListServices, ...): never in flight, no promise round, no flow bookkeeping.
      this.send(id, result);
      return;
    }
    // In flight from here on (nothing else ran while the handler's synchronous part did): Cancel and
    // teardown can reach it, and it counts against maxInFlight.
    this.inFlight.set(id, ctx);
    this.updateFlow();
    result.then(
      (response) => this.finish(id, response),
      (err: unknown) => this.finish(id, this.errorResponse(request, err)),
    );
  }

  private errorResponse(request: Request, err: unknown): Response {
    const error = toAdiError(err);
    if (error.code === 'INTERNAL') this.daemon.log.error(`${request.type} failed: ${error.stack ?? error.message}`);
    // A handler's refusal is audited like the dispatch's; Run and SudoRun audit all their own outcomes.
    if (
      (error.code === 'PERMISSION_DENIED' || error.code === 'UNAUTHORIZED') &&
      request.type !== 'Run' &&
      request.type !== 'SudoRun'
    ) {
      this.daemon.executor.auditRefused(this.identity, request, error);
    }
    return errorFrame(error);
  }

  /** Refused for want of identity or permission: answered, and audited (anonymous callers included). */
  private refuse(id: number, request: Request, error: AdiError): void {
    this.daemon.executor.auditRefused(this.identity, request, error);
    this.sendError(id, error);
  }

  /** A stream frame from a handler (ctx.send); false when the connection is gone or too far behind. */
  sendStreamFrame(id: number, response: Response): boolean {
    if (this.closed || this.unsentBytes > this.limits.outputHighWater) return false;
    this.send(id, response, true);
    return true;
  }

  /** Bytes accepted for sending and not yet handed to the kernel. */
  get unsent(): number {
    return this.unsentBytes;
  }

  /** Wake `request` when the output drains (or the connection closes). */
  waitForDrain(request: InFlight): void {
    if (this.closed) {
      request.wake();
      return;
    }
    this.drainWaiters.add(request);
    // Nothing buffered in the socket itself (only the batch not yet written): no 'drain' will come.
    if (this.socket.writableLength === 0) queueMicrotask(() => this.wakeStreams());
  }

  private wakeStreams(): void {
    if (this.drainWaiters.size === 0) return;
    const waiters = [...this.drainWaiters];
    this.drainWaiters.clear();
    for (const w of waiters) w.wake();
  }

  private onHello(id: number, protocol: number, token: string | null): void {
    if (this.greeted) {
      this.sendError(id, new AdiError('BAD_REQUEST', 'Hello was already sent on this connection.'));
      if (id === CONNECTION_ID) this.abort('a second Hello');
      return;
    }
    if (protocol !== PROTOCOL_VERSION) {
      this.sendError(
        id,
        new AdiError(
          'VERSION_MISMATCH',
          `The daemon speaks protocol ${PROTOCOL_VERSION} (version ${this.daemon.version}); the client speaks ${protocol}. Run 'adi daemon start' from the same adi version to replace the daemon.`,
        ),
      );
      this.flush();
      this.socket.end();
      return;
    }
    this.greeted = true;
    if (this.handshakeTimer) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
    this.identity = this.authenticate(token);
    this.send(id, {
      type: 'Welcome',
      protocol: PROTOCOL_VERSION,
      version: this.daemon.version,
      identity: this.identity.label,
    });
  }

  private finish(id: number, response: Response): void {
    const ctx = this.inFlight.get(id);
    if (ctx === undefined) return; // connection torn down meanwhile (its hooks ran then)
    ctx.done();
    this.drainWaiters.delete(ctx);
    this.inFlight.delete(id);
    this.send(id, response);
    const hooks = ctx.takeSentHooks();
    if (this.closed) runHooks(hooks);
    else this.afterFlush.push(...hooks);
    this.updateFlow();
  }

  private send(id: number, response: Response, own = false): void {
    if (this.closed) return;
    let bytes: Buffer;
    try {
      bytes = encodeFrame({ id, ...response }, this.limits.maxFrame);
      // A stream frame may wait long in the socket of a client that does not read: in its own buffer,
      // not as a view that keeps the encoder's whole shared output pool alive.
      if (own && bytes.length > 4096) bytes = ownBuffer(bytes);
      if (own) noteStreamed(bytes.length);
    } catch (err) {
      const error = toAdiError(err);
      bytes = encodeFrame({ id, type: 'Error', code: error.code, message: error.message }, this.limits.maxFrame);
    }
    // The first frame of a burst schedules the write; the answers to the rest of the burst (handled in
    // this same run of the event loop) join it.
    this.outgoing.add(bytes);
  }

  /** Write the gathered frames in one write. Safe to call at any time (a no-op when nothing waits). */
  private flush(): void {
    const bytes = this.outgoing.take();
    const hooks = this.afterFlush;
    this.afterFlush = [];
    if (bytes === null || this.socket.destroyed || this.socket.writableEnded) {
      runHooks(hooks);
      return;
    }
    // The callback also runs (with an error) when the socket is destroyed before the bytes leave.
    this.socket.write(bytes, hooks.length === 0 ? undefined : () => runHooks(hooks));
    this.updateFlow();
    // Taken by the kernel at once: no 'drain' follows, so waiting streams are told here.
    if (this.drainWaiters.size > 0 && this.socket.writableLength === 0) this.wakeStreams();
  }

  /** Bytes accepted for sending and not yet handed to the kernel. */
  private get unsentBytes(): number {
    return this.socket.writableLength + this.outgoing.bytes;
  }

  private sendError(id: number, error: AdiError): void {
    this.send(id, errorFrame(error));
  }

  /** Pause reading while too much is in flight or unsent, so one client cannot grow the daemon. */
  private updateFlow(): void {
    if (this.closed) return;
    const overloaded = this.inFlight.size >= this.limits.maxInFlight || this.unsentBytes > this.limits.outputHighWater;
    if (overloaded && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!overloaded && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private abort(reason: string): void {
    if (this.closed) return;
    this.daemon.log.warn(`closing a connection (${this.identity.label}): ${reason}`);
    this.flush();
    this.socket.end();
    // Give the error frame a moment to leave, then make sure the socket is gone.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.teardown();
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.frameTimer) clearTimeout(this.frameTimer);
    for (const request of this.inFlight.values()) {
      request.cancel(new AdiError('CONNECTION_CLOSED', 'The client closed the connection.'));
      request.done();
      runHooks(request.takeSentHooks());
    }
    this.inFlight.clear();
    this.drainWaiters.clear();
    // Frames not yet handed to the kernel are dropped: a gone client's output must not stay in memory.
    this.outgoing.clear();
    runHooks(this.afterFlush);
    this.afterFlush = [];
  }
}

function errorFrame(error: AdiError): Response {
  return error.data === undefined
    ? { type: 'Error', code: error.code, message: error.message }
    : { type: 'Error', code: error.code, message: error.message, data: error.data };
}

/**
 * A stream frame's own buffer is at least this big, so that with the daemon's allocator setting
 * (client/spawn.ts) it is a mapping of its own, given back when freed, not a hole in the malloc heap.
 * The pages past the frame's end are never touched, so they cost no memory.
 */
const FRAME_ALLOC = 64 * 1024;

function ownBuffer(bytes: Buffer): Buffer {
  const own = Buffer.allocUnsafeSlow(Math.max(bytes.length, FRAME_ALLOC));
  bytes.copy(own);
  return own.subarray(0, bytes.length);
}

function runHooks(hooks: readonly (() => void)[]): void {
  for (const fn of hooks) fn();
}
