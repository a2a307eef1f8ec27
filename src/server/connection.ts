// One client connection: frames in, requests validated and dispatched, responses out. Everything a
// connection may hold is bounded: bytes of a partial frame (the frame maximum), requests in flight
// (reading pauses past the bound), and unsent output (reading pauses, streams end past the bound).
//
// Hot path (see docs/performance.md): frames are decoded straight from the read buffer; a request's
// AbortController is made only if a handler asks for its signal; a synchronous handler's answer is
// sent at once; the answers of one burst of requests leave in one write (one syscall), gathered until
// the end of the current microtask run.

import type net from 'node:net';
import { AdiError, toAdiError } from '../errors.js';
import { PROTOCOL_VERSION, type Request, type Response } from '../protocol/types.js';
import { parseRequest } from '../protocol/validate.js';
import { decodeRange, encodeFrame } from '../wire/codec.js';
import { WriteBatch } from '../wire/batch.js';
import { FrameDecoder } from '../wire/framing.js';
import { ANONYMOUS, type DaemonState, type Identity, type RequestContext } from './context.js';
import { routeFor, type Access } from './dispatch.js';

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

/** Connection-level errors use id 0, which clients reserve for Hello. */
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
  }

  send(response: Response): boolean {
    return !this.cancelled && this.conn.sendStreamFrame(this.id, response);
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

  constructor(
    private readonly socket: net.Socket,
    private readonly daemon: DaemonState,
    private readonly authenticate: Authenticate,
    private readonly limits: ConnectionLimits,
    private readonly isShuttingDown: () => boolean,
  ) {
    this.decoder = new FrameDecoder(limits.maxFrame);
    this.handshakeTimer = setTimeout(() => this.abort('no Hello within the handshake timeout'), limits.handshakeTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.updateFlow());
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
      this.frameTimer = setTimeout(() => this.abort('a frame did not complete within the frame timeout'), this.limits.frameTimeoutMs);
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
      if (parsed.id === null) this.abort('request without a valid id');
      return;
    }
    this.onRequest(parsed.id, parsed.request);
  };

  private onRequest(id: number, request: Request): void {
    switch (request.type) {
      case 'Hello':
        this.onHello(id, request.protocol, request.token ?? null);
        return;
      case 'Cancel': {
        const target = this.inFlight.get(request.target);
        target?.cancel(new AdiError('CANCELLED', `Request ${request.target} was cancelled by the client.`));
        this.send(id, { type: 'Ok' });
        return;
      }
      default:
        break;
    }
    if (!this.greeted && request.type !== 'Ping') {
      this.refuse(id, request, new AdiError('UNAUTHORIZED', `Send Hello first: only Ping is answered before the handshake.`));
      return;
    }
    if (this.isShuttingDown() && request.type !== 'Ping') {
      this.sendError(id, new AdiError('SHUTTING_DOWN', 'The daemon is shutting down; try again once it has restarted.'));
      return;
    }
    if (this.inFlight.has(id)) {
      this.sendError(id, new AdiError('BAD_REQUEST', `Request id ${id} is already in flight on this connection; use a new id.`));
      return;
    }
    const route = routeFor(request.type);
    if (IDENTITY_RANK[this.identity.kind] < ACCESS_RANK[route.access]) {
      const code = this.identity.kind === 'anonymous' ? 'UNAUTHORIZED' : 'PERMISSION_DENIED';
      this.refuse(id, request, new AdiError(code, `${request.type} needs the ${route.access} identity; this connection is ${this.identity.label}.`));
      return;
    }
    const ctx = new InFlight(this.daemon, this.identity, id, this);
    let result: Promise<Response> | Response;
    try {
      result = route.handler(request as never, ctx);
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
    if ((error.code === 'PERMISSION_DENIED' || error.code === 'UNAUTHORIZED') && request.type !== 'Run' && request.type !== 'SudoRun') {
      this.daemon.executor.auditRefused(this.identity, request, error);
    }
    return { type: 'Error', code: error.code, message: error.message };
  }

  /** Refused for want of identity or permission: answered, and audited (anonymous callers included). */
  private refuse(id: number, request: Request, error: AdiError): void {
    this.daemon.executor.auditRefused(this.identity, request, error);
    this.sendError(id, error);
  }

  /** A stream frame from a handler (ctx.send); false when the connection is gone or too far behind. */
  sendStreamFrame(id: number, response: Response): boolean {
    if (this.closed || this.unsentBytes > this.limits.outputHighWater) return false;
    this.send(id, response);
    return true;
  }

  private onHello(id: number, protocol: number, token: string | null): void {
    if (this.greeted) {
      this.sendError(id, new AdiError('BAD_REQUEST', 'Hello was already sent on this connection.'));
      return;
    }
    if (protocol !== PROTOCOL_VERSION) {
      this.sendError(id, new AdiError('VERSION_MISMATCH', `The daemon speaks protocol ${PROTOCOL_VERSION} (version ${this.daemon.version}); the client speaks ${protocol}. Run 'adi daemon start' from the same adi version to replace the daemon.`));
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
    this.send(id, { type: 'Welcome', protocol: PROTOCOL_VERSION, version: this.daemon.version, identity: this.identity.label });
  }

  private finish(id: number, response: Response): void {
    const ctx = this.inFlight.get(id);
    if (ctx === undefined) return; // connection torn down meanwhile (its hooks ran then)
    this.inFlight.delete(id);
    this.send(id, response);
    const hooks = ctx.takeSentHooks();
    if (this.closed) runHooks(hooks);
    else this.afterFlush.push(...hooks);
    this.updateFlow();
  }

  private send(id: number, response: Response): void {
    if (this.closed) return;
    let bytes: Buffer;
    try {
      bytes = encodeFrame({ id, ...response }, this.limits.maxFrame);
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
  }

  /** Bytes accepted for sending and not yet handed to the kernel. */
  private get unsentBytes(): number {
    return this.socket.writableLength + this.outgoing.bytes;
  }

  private sendError(id: number, error: AdiError): void {
    this.send(id, { type: 'Error', code: error.code, message: error.message });
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
      runHooks(request.takeSentHooks());
    }
    this.inFlight.clear();
    runHooks(this.afterFlush);
    this.afterFlush = [];
  }
}

function runHooks(hooks: readonly (() => void)[]): void {
  for (const fn of hooks) fn();
}
