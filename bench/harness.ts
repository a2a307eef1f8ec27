// The benchmark's world: a fresh temporary HOME (so the daemon's data dir is new and private), the
// environment the daemon and the CLI run in, the real `adi` command, and a cleanup list that runs on
// success, on error and on Ctrl-C, so no daemon, service or helper process outlives the run.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonClient, resolvePaths, type Paths } from '../src/index.js';
import { nowNs, sleep, waitUntil } from './stats.js';
import { isAlive } from '../src/system/alive.js';

/** The package root (this file runs from dist/bench/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ADI = path.join(ROOT, 'bin', 'adi.js');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

type Cleanup = () => void | Promise<void>;

export class Harness {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  readonly paths: Paths;
  /** A scratch folder for stamps, sockets and configs (inside HOME, so one rm removes everything). */
  readonly scratch: string;
  private readonly cleanups: Cleanup[] = [];
  private readonly children = new Set<ChildProcess>();
  private cleaned = false;

  constructor() {
    // Short path: Unix socket paths are limited to 107 bytes.
    this.home = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-bench-'));
    this.scratch = path.join(this.home, 'scratch');
    fs.mkdirSync(this.scratch);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (k.startsWith('ADI_') || k.startsWith('XDG_') || k.startsWith('NODE_') || k.startsWith('PM2_')) continue;
      env[k] = v;
    }
    // LC_ALL=C: $EPOCHREALTIME and friends print a '.' decimal point whatever the user's locale.
    this.env = { ...env, HOME: this.home, LC_ALL: 'C' };
    this.paths = resolvePaths({ env: this.env, home: this.home });
  }

  /** Register cleanup work; it runs last-registered first. */
  onCleanup(fn: Cleanup): void {
    this.cleanups.push(fn);
  }

  client(options: { timeoutMs?: number } = {}): DaemonClient {
    const client = new DaemonClient({ env: this.env, timeoutMs: options.timeoutMs ?? 30_000, clientName: 'adi-bench' });
    this.onCleanup(() => client.close());
    return client;
  }

  /** Spawn a helper process that is killed at cleanup if it is still around. */
  spawn(file: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn(file, args, { env: this.env, ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  /** Run a command to completion (bounded by timeoutMs), capturing its output and wall time. */
  run(
    file: string,
    args: string[],
    options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; capture?: boolean } = {},
  ): Promise<RunResult> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const t0 = nowNs();
      const child = this.spawn(file, args, {
        env: options.env ?? this.env,
        stdio: ['ignore', options.capture === false ? 'ignore' : 'pipe', options.capture === false ? 'ignore' : 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout
        ?.setEncoding('utf8')
        .on('data', (d: string) => (stdout += d.length + stdout.length < 1 << 20 ? d : ''));
      child.stderr
        ?.setEncoding('utf8')
        .on('data', (d: string) => (stderr += d.length + stderr.length < 1 << 20 ? d : ''));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${path.basename(file)} ${args.join(' ')} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code) => {
        const ms = (nowNs() - t0) / 1e6;
        clearTimeout(timer);
        resolve({ code, stdout, stderr, ms });
      });
    });
  }

  /** The real `adi` command with this HOME. */
  adi(args: string[], options: { timeoutMs?: number; capture?: boolean } = {}): Promise<RunResult> {
    return this.run(process.execPath, [ADI, ...args], options);
  }

  /** `adi daemon start`; returns the daemon's pid (from its pid file). */
  async startDaemon(): Promise<number> {
    this.onCleanup(() => this.stopDaemon());
    const r = await this.adi(['daemon', 'start'], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`adi daemon start failed (${r.code}): ${r.stderr || r.stdout}`);
    return this.daemonPid();
  }

  daemonPid(): number {
    const pid = Number(fs.readFileSync(this.paths.pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no daemon pid in ${this.paths.pidFile}`);
    return pid;
  }

  /** `adi daemon stop` (graceful: it stops every service); SIGKILL if that does not end it in time. */
  async stopDaemon(): Promise<void> {
    let pid: number | null = null;
    try {
      pid = this.daemonPid();
    } catch {
      return;
    }
    try {
      await this.adi(['daemon', 'stop'], { timeoutMs: 60_000 });
    } catch {
      // killed below
    }
    if (pid !== null && alive(pid)) {
      await waitUntil(() => !alive(pid), 10_000, 'the daemon to exit', 20).catch(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      });
    }
  }

  /** Run every cleanup, then SIGKILL whatever still runs with this HOME, then remove HOME. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const fn of this.cleanups.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        // Bounded: a cleanup step that hangs must not keep the rest from running.
        await Promise.race([fn(), new Promise((resolve) => (timer = setTimeout(resolve, 90_000)))]);
      } catch (err) {
        process.stderr.write(`bench: cleanup: ${err instanceof Error ? err.message : String(err)}\n`);
      } finally {
        clearTimeout(timer);
      }
    }
    for (const child of this.children) child.kill('SIGKILL');
    // Services, PM2's God daemon, supervisord: everything the run started inherited HOME.
    for (let attempt = 0; attempt < 3; attempt++) {
      const left = pidsWithEnv(`HOME=${this.home}`);
      if (left.length === 0) break;
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await sleep(100);
    }
    fs.rmSync(this.home, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Whether a process exists and is not a zombie. */
export const alive: (pid: number) => boolean = isAlive;

/** Pids of our own processes whose environment holds `entry` exactly (Linux /proc; [] elsewhere). */
export function pidsWithEnv(entry: string): number[] {
  if (process.platform !== 'linux') return [];
  const needle = Buffer.from(`\0${entry}\0`);
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environ = Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${name}/environ`), Buffer.from([0])]);
      if (environ.includes(needle)) found.push(Number(name));
    } catch {
      // gone, or not ours
    }
  }
  return found;
}
