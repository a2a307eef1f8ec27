// Starting the daemon in the background (the seed's start_daemon / spawn_background): the same node
// binary runs `adi daemon run --background`, detached in its own session, its output appended to the
// daemon log. The caller then waits until the daemon answers a ping, not until a file appears.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from '../paths.js';
import { ensurePrivateDir } from '../server/files.js';
import { cliEntry } from '../version.js';

export interface Spawned {
  pid: number | undefined;
  /** Resolves with the exit code if the process ends (e.g. it found another daemon running). */
  exited: Promise<number | null>;
}

export function spawnDaemon(paths: Paths, env: NodeJS.ProcessEnv): Spawned {
  ensurePrivateDir(paths.dataDir);
  fs.mkdirSync(path.dirname(paths.logFile), { recursive: true, mode: 0o700 });
  const out = fs.openSync(paths.logFile, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  try {
    const child = spawn(process.execPath, [cliEntry(), 'daemon', 'run', '--background'], {
      detached: true,
      stdio: ['ignore', out, out],
      env,
      cwd: '/',
    });
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    child.unref();
    return { pid: child.pid, exited };
  } finally {
    fs.closeSync(out);
  }
}
