// Whether a process still runs. A zombie (exited, not yet reaped) runs nothing and counts as gone; on
// Linux its state is read from /proc, elsewhere only existence can be checked (kill 0; EPERM = exists).

import { readProcStatSync } from './proc.js';

export function isAlive(pid: number): boolean {
  if (process.platform === 'linux') {
    const state = readProcStatSync(pid)?.state;
    return state !== undefined && state !== 'Z' && state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
