// Shared set-up for the day-to-day operation tests (issue 8): temp homes cleaned after the file, a
// terminal for commands that behave differently on one (util-linux `script`), and small waits.

import { spawn, spawnSync } from 'node:child_process';
import { startDaemon } from '../helpers/daemon.js';
import { ADI, home, type TempHome } from '../helpers/env.js';

/**
 * A fresh HOME with a daemon started on its own, as `adi daemon start` starts it: a first command that
 * starts the daemon itself can connect before the daemon has written its admin token, and be anonymous.
 */
export async function homeWithDaemon(extra: NodeJS.ProcessEnv = {}): Promise<TempHome> {
  const h = home(extra);
  await startDaemon(h.env);
  return h;
}

/** Whether a program is on PATH. */
export function have(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

/** Quote for sh. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface TtyResult {
  code: number | null;
  /** stdout and stderr together, as the terminal showed them. */
  output: string;
}

/**
 * Run `adi ARGS` with its stdout and stderr on a pseudo-terminal (`script -qec`), so isTTY is true.
 * Null when `script` is not installed.
 */
export function adiInTty(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<TtyResult> | null {
  if (!have('script')) return null;
  const line = [process.execPath, ADI, ...args].map(shq).join(' ');
  return new Promise((resolve, reject) => {
    // stdin from /dev/null: script would otherwise wait on the test runner's stdin.
    const child = spawn('script', ['-qec', line, '/dev/null'], {
      env: { ...env, TERM: 'xterm' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`adi ${args.join(' ')} in a terminal did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
