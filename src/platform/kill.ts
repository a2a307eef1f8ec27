// Ending a process and everything it started, per platform (issue 8). POSIX: one kill(2) to the
// process group, as every service leads its own (launch.ts spawns it detached, i.e. setsid). Windows has
// no process groups to signal: `taskkill /T` walks the tree of child processes by parent pid. Callers
// (process-group.ts) keep their own wait-then-escalate logic; this only sends.

import { spawn as nodeSpawn } from 'node:child_process';

export type KillSignal = NodeJS.Signals | 0;

/** The subset of child_process.spawn used here, injectable so the argv can be checked without Windows. */
export type Spawner = (file: string, args: string[], options: { stdio: 'ignore'; windowsHide: boolean }) => {
  once(event: 'exit', listener: (code: number | null) => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
};

export interface KillDeps {
  platform?: NodeJS.Platform;
  spawn?: Spawner;
  /** process.kill, injectable for the same reason. */
  kill?: (pid: number, signal: KillSignal) => void;
}

export type KillResult = 'sent' | 'gone' | 'denied' | 'failed';

/**
 * The command line that ends the tree of `pid` on Windows. SIGKILL (a forced stop, or the end of a
 * grace period) adds /F: TerminateProcess, which nothing survives. Any other signal asks politely
 * (WM_CLOSE): windowed programs close, console programs ignore it, so the caller's stop timeout then
 * escalates to SIGKILL, as on POSIX when a service ignores SIGTERM.
 */
export function taskkillArgs(pid: number, signal: KillSignal): string[] {
  return signal === 'SIGKILL' ? ['/T', '/F', '/PID', String(pid)] : ['/T', '/PID', String(pid)];
}

/**
 * Signal the process `pid` and all its descendants. On POSIX `pid` must lead its process group (our
 * services do); signal 0 only checks that any member is left.
 */
export function killTree(pid: number, signal: KillSignal, deps: KillDeps = {}): Promise<KillResult> {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return Promise.resolve('failed');
  const platform = deps.platform ?? process.platform;
  if (platform === 'win32') {
    if (signal === 0) return Promise.resolve(signalOne(pid, 0, deps));
    const spawn = deps.spawn ?? (nodeSpawn as unknown as Spawner);
    return new Promise((resolve) => {
      // taskkill is in System32, on every Windows PATH; no shell is involved.
      const child = spawn('taskkill', taskkillArgs(pid, signal), { stdio: 'ignore', windowsHide: true });
      child.once('error', () => resolve('failed'));
      // 0: done; 128: no such process (already gone); 1: access denied or some of the tree refused.
      child.once('exit', (code) => resolve(code === 0 ? 'sent' : code === 128 ? 'gone' : code === 1 ? 'denied' : 'failed'));
    });
  }
  return Promise.resolve(signalOne(-pid, signal, deps));
}

function signalOne(target: number, signal: KillSignal, deps: KillDeps): KillResult {
  try {
    if (deps.kill !== undefined) deps.kill(target, signal);
    else process.kill(target, signal);
    return 'sent';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ESRCH' ? 'gone' : code === 'EPERM' ? 'denied' : 'failed';
  }
}
