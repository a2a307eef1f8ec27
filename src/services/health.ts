// Health checks, event-driven: exits are seen at once through the child's
// 'exit' event, so what is left here are the optional probes — readiness (the service counts as
// `starting` until it passes) and liveness (failing `failure_threshold` times in a row restarts the
// service). Each probe is a command (argv, no shell), a TCP connect or an HTTP GET. A timer exists only
// while a probe is configured and the service runs: a daemon with no probes never wakes up.

import { spawn } from 'node:child_process';
import type http from 'node:http';
import net from 'node:net';
import { parseTcpTarget, type NormalizedHealthCheck } from '../protocol/config-schema.js';

export interface ProbeResult {
  ok: boolean;
  /** Why it failed (or what passed), one line. */
  detail: string;
}

export interface ProbeContext {
  /** Environment and cwd for command probes: the service's own. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  signal?: AbortSignal;
  /**
   * Command probes run as the service does (launch.ts): with its uid/gid, or wrapped in its sudo
   * chain, and their group is killed through `signalVia` when the daemon may not signal it.
   */
  uid?: number;
  gid?: number;
  wrap?: (file: string, args: readonly string[]) => { file: string; args: string[] };
  signalVia?: ((pgid: number, signal: NodeJS.Signals) => void) | null;
}

/** How much of a failing command probe's output goes into the message. */
const PROBE_OUTPUT_BYTES = 200;

/** Run one probe, bounded by its timeout_secs. Never rejects. */
export function runProbe(check: NormalizedHealthCheck, ctx: ProbeContext): Promise<ProbeResult> {
  const timeoutMs = Math.round(check.timeout_secs * 1000);
  if (ctx.signal?.aborted === true) return Promise.resolve({ ok: false, detail: 'cancelled' });
  if (check.command !== undefined) return commandProbe(check.command, timeoutMs, ctx);
  if (check.tcp !== undefined) return tcpProbe(check.tcp, timeoutMs, ctx.signal);
  if (check.http !== undefined) return httpProbe(check.http, timeoutMs, ctx.signal);
  return Promise.resolve({ ok: false, detail: 'no probe configured' });
}

function commandProbe(argv: string[], timeoutMs: number, ctx: ProbeContext): Promise<ProbeResult> {
  const [first, ...rest] = argv as [string, ...string[]];
  const { file, args } = ctx.wrap !== undefined ? ctx.wrap(first, rest) : { file: first, args: rest };
  const shown = JSON.stringify(argv.join(' '));
  return new Promise((resolve) => {
    let settled = false;
    let output = '';
    let viaDone = false;
    const child = spawn(file, args, {
      cwd: ctx.cwd,
      env: ctx.env,
      // Own group, so a timeout kills whatever the probe started too.
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      windowsHide: true,
      ...(ctx.uid !== undefined ? { uid: ctx.uid } : {}),
      ...(ctx.gid !== undefined ? { gid: ctx.gid } : {}),
    });
    const killGroup = (useVia = true): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      if (useVia && !viaDone && ctx.signalVia != null) {
        viaDone = true;
        ctx.signalVia(child.pid, 'SIGKILL');
      }
    };
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.signal?.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const onAbort = (): void => {
      killGroup();
      finish({ ok: false, detail: 'cancelled' });
    };
    const timer = setTimeout(() => {
      killGroup();
      finish({ ok: false, detail: `${shown} timed out after ${timeoutMs / 1000}s` });
    }, timeoutMs);
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (output.length < PROBE_OUTPUT_BYTES) output += chunk.toString('utf8', 0, PROBE_OUTPUT_BYTES);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      finish({ ok: false, detail: `cannot run ${shown}: ${err.code ?? err.message}` });
    });
    child.on('exit', (code, signal) => {
      // Anything the probe left in its group goes with it: probes must not accumulate. (Through sudo
      // only on a timeout or cancel: a helper per probe run would cost more than the probe.)
      killGroup(false);
      if (code === 0) {
        finish({ ok: true, detail: `${shown} exited with code 0` });
        return;
      }
      const how = signal !== null ? `was killed by ${signal}` : `exited with code ${String(code)}`;
      const said = output.trim().split('\n')[0]?.slice(0, PROBE_OUTPUT_BYTES) ?? '';
      finish({ ok: false, detail: `${shown} ${how}${said !== '' ? `: ${said}` : ''}` });
    });
  });
}

function tcpProbe(target: number | string, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const parsed = parseTcpTarget(target);
  if (parsed === null) return Promise.resolve({ ok: false, detail: `bad tcp target ${String(target)}` });
  const shown = `tcp ${parsed.host}:${parsed.port}`;
  return new Promise((resolve) => {
    let settled = false;
    const socket = net.connect({ host: parsed.host, port: parsed.port });
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = (): void => finish({ ok: false, detail: 'cancelled' });
    const timer = setTimeout(
      () => finish({ ok: false, detail: `${shown}: no connection within ${timeoutMs / 1000}s` }),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish({ ok: true, detail: `${shown}: connected` }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      finish({ ok: false, detail: `${shown}: ${err.code ?? err.message}` }),
    );
  });
}

/**
 * node:http and node:https are loaded on the first HTTP probe, not at start-up: with TLS they are about
 * 1.6 MB of a daemon's resident memory, which a daemon without HTTP probes never needs.
 */
async function httpGet(url: string): Promise<typeof http.get> {
  return url.startsWith('https:') ? (await import('node:https')).get : (await import('node:http')).get;
}

async function httpProbe(url: string, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const shown = `http ${url}`;
  const get = await httpGet(url);
  return new Promise((resolve) => {
    let settled = false;
    const controller = new AbortController();
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      controller.abort();
      resolve(result);
    };
    const onAbort = (): void => finish({ ok: false, detail: 'cancelled' });
    const timer = setTimeout(
      () => finish({ ok: false, detail: `${shown}: no answer within ${timeoutMs / 1000}s` }),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    let req: http.ClientRequest;
    try {
      req = get(
        url,
        { signal: controller.signal, headers: { 'user-agent': 'adi-daemon-health' }, agent: false },
        (res) => {
          const status = res.statusCode ?? 0;
          res.resume();
          finish(
            status > 0 && status < 400
              ? { ok: true, detail: `${shown}: status ${status}` }
              : { ok: false, detail: `${shown}: status ${status}` },
          );
        },
      );
    } catch (err) {
      finish({ ok: false, detail: `${shown}: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish({ ok: false, detail: `${shown}: ${err.code ?? err.message}` }),
    );
  });
}

export interface ProbeLoopHandlers {
  /** Readiness: the probe passed (the loop stops). */
  onReady?(result: ProbeResult): void;
  /** Liveness: failure_threshold failures in a row (the loop stops). */
  onUnhealthy?(result: ProbeResult): void;
}

/**
 * Runs one check repeatedly: readiness probes at once and then every interval until one passes (it has
 * no failure threshold: a service that never gets ready stays `starting`, visibly); liveness first
 * probes one interval after the service became ready. Probes never overlap: the next is scheduled when
 * the previous has finished.
 */
export class ProbeLoop {
  private timer: NodeJS.Timeout | null = null;
  private controller: AbortController | null = null;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly mode: 'readiness' | 'liveness',
    private readonly check: NormalizedHealthCheck,
    private readonly ctx: Omit<ProbeContext, 'signal'>,
    private readonly handlers: ProbeLoopHandlers,
  ) {}

  /** Consecutive failures so far. */
  get failureCount(): number {
    return this.failures;
  }

  start(): void {
    if (this.mode === 'readiness') void this.tick();
    else this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.controller?.abort();
    this.controller = null;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        void this.tick();
      },
      Math.round(this.check.interval_secs * 1000),
    );
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.controller = new AbortController();
    const result = await runProbe(this.check, { ...this.ctx, signal: this.controller.signal });
    this.controller = null;
    if (this.stopped) return;
    if (result.ok) {
      this.failures = 0;
      if (this.mode === 'readiness') {
        this.stopped = true;
        this.handlers.onReady?.(result);
        return;
      }
    } else if (this.mode === 'liveness') {
      this.failures++;
      if (this.failures >= this.check.failure_threshold) {
        this.stopped = true;
        this.handlers.onUnhealthy?.(result);
        return;
      }
    }
    this.schedule();
  }
}
