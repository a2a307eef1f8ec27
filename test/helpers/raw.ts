// A raw protocol peer for tests: connect, send exact bytes, read frames back.

import net from 'node:net';
import type { Endpoint } from '../../src/core/paths.js';
import { decode, encodeFrame } from '../../src/wire/codec.js';
import { FrameDecoder } from '../../src/wire/framing.js';

export class RawPeer {
  readonly frames: Record<string, unknown>[] = [];
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk, (body) => this.frames.push(decode(body) as Record<string, unknown>));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(endpoint: Endpoint): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path: endpoint.address });
      socket.once('connect', () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  send(message: Record<string, unknown>): void {
    this.socket.write(encodeFrame(message, 64 * 1024 * 1024));
  }

  /** Wait until a frame matching `pred` arrives (or the connection closes: then null). */
  async waitFrame(
    pred: (f: Record<string, unknown>) => boolean,
    timeoutMs = 5000,
  ): Promise<Record<string, unknown> | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(pred);
      if (found) return found;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a frame');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Wait until the connection closes; false if it is still open after `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    if (!this.closed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.socket.once('close', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
