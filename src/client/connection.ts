// One multiplexed connection to the daemon: the handshake, request ids, per-call timeouts and stream
// routing. DaemonClient builds its API on this; nothing here knows what a request means.

import type net from 'node:net';
import { AdiError, isErrorCode } from '../errors.js';
import type { Endpoint } from '../paths.js';
import { DEFAULT_MAX_FRAME, PROTOCOL_VERSION, type Request, type Response, type Welcome } from '../protocol/types.js';
import { MAX_ID, parseResponse } from '../protocol/validate.js';
import { connect } from '../transport.js';
import { decode, encodeFrame } from '../wire/codec.js';
import { FrameDecoder } from '../wire/framing.js';

/** Called with each frame of a request; returns true when the request is complete. */
type FrameHandler = (response: Response) => boolean;

interface Pending {
  onFrame: FrameHandler;
  fail: (err: AdiError) => void;
  timer: NodeJS.Timeout | null;
}

export function remoteError(response: { code: string; message: string }): AdiError {
  const error = new AdiError(isErrorCode(response.code) ? response.code : 'INTERNAL', response.message);
  (error as AdiError & { remoteCode: string }).remoteCode = response.code;
  return error;
}

export class ClientConnection {
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new FrameDecoder(DEFAULT_MAX_FRAME);
  private nextId = 1;
  private closedError: AdiError | null = null;
  welcome: Welcome | null = null;

  private constructor(private readonly socket: net.Socket, private readonly onClose: () => void) {
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk, (body) => this.onFrame(body));
      } catch (err) {
        this.close(err instanceof AdiError ? err : new AdiError('BAD_FRAME', String(err)));
      }
    });
    socket.on('error', (err) => this.close(new AdiError('CONNECTION_CLOSED', `Connection to the daemon failed: ${err.message}`)));
    socket.on('close', () => this.close(new AdiError('CONNECTION_CLOSED', 'The daemon closed the connection.')));
  }

  static async open(endpoint: Endpoint, opts: { token: string | null; client: string; timeoutMs: number; onClose: () => void }): Promise<ClientConnection> {
    const socket = await connect(endpoint, opts.timeoutMs);
    const conn = new ClientConnection(socket, opts.onClose);
    conn.updateRef();
    // The handshake is the first frame; its id is 0 by convention.
    let reply: Response;
    try {
      reply = await conn.call({ type: 'Hello', protocol: PROTOCOL_VERSION, client: opts.client, token: opts.token }, opts.timeoutMs, 0);
    } catch (err) {
      conn.close(err instanceof AdiError ? err : undefined);
      throw err;
    }
    if (reply.type !== 'Welcome') {
      conn.close(new AdiError('BAD_FRAME', `Expected Welcome, got ${reply.type}`));
      throw new AdiError('BAD_FRAME', `The daemon answered Hello with ${reply.type}.`);
    }
    conn.welcome = reply;
    return conn;
  }

  get isOpen(): boolean {
    return this.closedError === null;
  }

  /** One request, one final response (an Error response rejects). */
  call(request: Request, timeoutMs: number, fixedId?: number): Promise<Response> {
    return new Promise((resolve, reject) => {
      this.start(request, timeoutMs, fixedId, {
        onFrame: (response) => {
          if (response.type === 'Error') reject(remoteError(response));
          else resolve(response);
          return true;
        },
        fail: reject,
      });
    });
  }

  /**
   * A request whose answer is a run of frames. `onFrame` returns true on the last one. The timeout
   * covers the wait for the first frame only (null: none). Returns the id, for Cancel.
   */
  stream(request: Request, firstFrameTimeoutMs: number | null, onFrame: FrameHandler, fail: (err: AdiError) => void): number {
    return this.start(request, firstFrameTimeoutMs, undefined, { onFrame, fail });
  }

  private start(request: Request, timeoutMs: number | null, fixedId: number | undefined, handlers: Omit<Pending, 'timer'>): number {
    if (this.closedError) {
      handlers.fail(this.closedError);
      return -1;
    }
    const id = fixedId ?? this.allocateId();
    const entry: Pending = { ...handlers, timer: null };
    if (timeoutMs !== null) {
      entry.timer = setTimeout(() => {
        this.pending.delete(id);
        this.updateRef();
        handlers.fail(new AdiError('TIMEOUT', `The daemon did not answer ${request.type} within ${timeoutMs} ms.`));
      }, timeoutMs);
    }
    this.pending.set(id, entry);
    this.updateRef();
    try {
      this.socket.write(encodeFrame({ id, ...request }, DEFAULT_MAX_FRAME));
    } catch (err) {
      this.pending.delete(id);
      if (entry.timer) clearTimeout(entry.timer);
      handlers.fail(err instanceof AdiError ? err : new AdiError('BAD_REQUEST', String(err)));
    }
    return id;
  }

  /** Forget a stream locally (after Cancel, frames still in transit are dropped). */
  forget(id: number): void {
    const entry = this.pending.get(id);
    if (entry?.timer) clearTimeout(entry.timer);
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

  private onFrame(body: Buffer): void {
    let id: number;
    let response: Response;
    try {
      ({ id, response } = parseResponse(decode(body)));
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
    if (entry.timer) {
      clearTimeout(entry.timer);
      entry.timer = null;
    }
    if (entry.onFrame(response)) {
      this.pending.delete(id);
      this.updateRef();
    }
  }

  close(reason: AdiError = new AdiError('CONNECTION_CLOSED', 'The client closed the connection.')): void {
    if (this.closedError) return;
    this.closedError = reason;
    this.socket.destroy();
    for (const entry of this.pending.values()) {
      if (entry.timer) clearTimeout(entry.timer);
      entry.fail(reason);
    }
    this.pending.clear();
    this.onClose();
  }

  /**
   * The socket keeps the process alive only while a request is pending, so a script that forgets
   * close() still exits once its work is done.
   */
  private updateRef(): void {
    if (this.pending.size > 0) this.socket.ref();
    else this.socket.unref();
  }
}
