// Client side of the raw socket floor (see echo-server.ts): the same framing as the daemon's protocol
// (u32 LE length + body), a small opaque body, no encoding or validation.

import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Harness } from './harness.js';
import { waitUntil } from './stats.js';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'echo-server.js');

export class EchoClient {
  /** Header bytes of the frame being read (0-4), and body bytes of it still to come (-1: in header). */
  private readonly header = Buffer.alloc(4);
  private headerBytes = 0;
  private bodyLeft = -1;
  /** Callbacks of the frames in flight, oldest first (the server answers in order). */
  private readonly waiting: Array<() => void> = [];
  private head = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  static connect(socketPath: string): Promise<EchoClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: socketPath });
      socket.once('connect', () => resolve(new EchoClient(socket)));
      socket.once('error', reject);
    });
  }

  /** One frame out, wait for it to come back. */
  roundTrip(frame: Buffer): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(frame);
    });
  }

  /** `count` frames with at most `window` in flight; resolves when all came back. */
  pipelined(frame: Buffer, count: number, window: number): Promise<void> {
    return new Promise((resolve) => {
      let sent = 0;
      let done = 0;
      const onBack = (): void => {
        done++;
        if (done === count) resolve();
        else if (sent < count) send();
      };
      const send = (): void => {
        sent++;
        this.waiting.push(onBack);
        this.socket.write(frame);
      };
      for (let i = 0; i < Math.min(window, count); i++) send();
    });
  }

  close(): void {
    this.socket.destroy();
  }

  /** Count frames as they end; the bytes themselves are skipped, never copied. */
  private onData(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.bodyLeft < 0) {
        const take = Math.min(4 - this.headerBytes, chunk.length - at);
        chunk.copy(this.header, this.headerBytes, at, at + take);
        this.headerBytes += take;
        at += take;
        if (this.headerBytes < 4) return;
        this.bodyLeft = this.header.readUInt32LE(0);
        this.headerBytes = 0;
      }
      const skip = Math.min(this.bodyLeft, chunk.length - at);
      at += skip;
      this.bodyLeft -= skip;
      if (this.bodyLeft > 0) return;
      this.bodyLeft = -1;
      const cb = this.waiting[this.head++];
      if (this.head > 4096) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      cb?.();
    }
  }
}

/** A frame with a body of `bodyBytes` bytes. */
export function echoFrame(bodyBytes: number): Buffer {
  const frame = Buffer.alloc(4 + bodyBytes, 0x61);
  frame.writeUInt32LE(bodyBytes, 0);
  return frame;
}

/** Start the echo server in its own process; returns its socket path (the harness stops it). */
export async function startEchoServer(h: Harness): Promise<string> {
  const socketPath = path.join(h.scratch, 'echo.sock');
  const child = h.spawn(process.execPath, [SERVER, socketPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  let ready = false;
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    if (d.includes('ready')) ready = true;
  });
  h.onCleanup(() => {
    child.stdin?.end();
    child.kill('SIGTERM');
  });
  await waitUntil(() => ready || child.exitCode !== null, 10_000, 'the echo server');
  if (!ready) throw new Error('the echo server did not start');
  return socketPath;
}
