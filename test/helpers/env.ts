// A fresh, empty HOME per test, with the environment that points adi at it, and helpers to run the
// real `adi` command and to find what a daemon left behind.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolvePaths, type Paths } from '../../src/core/paths.js';
import { isAlive } from '../../src/system/alive.js';
import { cmdlineOf, environHas, processIds } from './proc.js';

/** The package root (tests run from dist/test/...). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ADI = path.join(ROOT, 'bin', 'adi.js');
/** Plain JS fixture programs live in the source tree (they are not compiled). */
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export interface TempHome {
  home: string;
  env: NodeJS.ProcessEnv;
  paths: Paths;
  cleanup(): Promise<void>;
}

/** The environment a test daemon runs in: the machine's, minus anything adi reads, plus HOME. */
export function envFor(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ADI_') || k.startsWith('XDG_') || k.startsWith('NODE_TEST')) continue;
    env[k] = v;
  }
  return { ...env, HOME: home, ...extra };
}

export function tempHome(extra: NodeJS.ProcessEnv = {}): TempHome {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-t-'));
  const env = envFor(home, extra);
  const paths = resolvePaths({ env, home });
  return {
    home,
    env,
    paths,
    async cleanup() {
      await killDaemons(home);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

const homes: TempHome[] = [];
after(async () => {
  await Promise.all(homes.map((h) => h.cleanup()));
});

/** A fresh HOME, cleaned up (daemons stopped, files removed) after the test file. */
export function home(extra: NodeJS.ProcessEnv = {}): TempHome {
  const h = tempHome(extra);
  homes.push(h);
  return h;
}

/** Whether a process exists (a zombie counts as gone). */
export const alive: (pid: number) => boolean = isAlive;

/**
 * Pids of live daemons of this data dir, found by their command line and environment. Only the
 * command line of every process is read (a zombie's is empty); the environment only of daemons:
 * every test file's cleanup polls this.
 */
export function daemonPids(home: string): number[] {
  return processIds().filter((pid) => {
    const argv = cmdlineOf(pid);
    const i = argv?.indexOf('daemon') ?? -1;
    return i >= 0 && argv?.[i + 1] === 'run' && environHas(pid, `HOME=${home}`);
  });
}

/**
 * Poll `fn` until it returns a truthy value, and return that value; fail after `timeoutMs` saying what
 * was awaited and what `fn` last returned. For conditions no event announces (a process gone, a line
 * in a file written by another process); an event that can be awaited is awaited instead. The pause
 * starts at 10 ms and doubles up to 100 ms: the suite is CPU-bound, and a slow condition polled every
 * 10 ms (a /proc scan, a CLI run) burns far more than the little latency the back-off adds.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 10; ; pause = Math.min(pause * 2, 100)) {
    const last = await fn();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(1, deadline - Date.now()))));
  }
}

/** Stop every daemon of this HOME (SIGTERM, so they stop their services; SIGKILL if they hang). */
export async function killDaemons(home: string): Promise<void> {
  for (const pid of daemonPids(home)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  await waitFor(() => daemonPids(home).length === 0, 15_000, 'test daemons to exit').catch(() => {
    for (const pid of daemonPids(home)) process.kill(pid, 'SIGKILL');
  });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real `adi` command. */
export function adi(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ADI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `adi ${args.join(' ')} did not finish within ${options.timeoutMs ?? 30_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}
