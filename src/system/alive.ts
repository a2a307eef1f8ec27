// Whether a process still runs. A zombie (exited, not yet reaped) runs nothing and counts as gone; on
// Linux its state is read from /proc, elsewhere only existence can be checked (kill 0; EPERM = exists).

import fs from 'node:fs';

export function isAlive(pid: number): boolean {
  if (process.platform === 'linux') {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
      const state = stat[stat.lastIndexOf(')') + 2];
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
