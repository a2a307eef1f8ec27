// The single-instance lock (the Nx way): a file created with O_EXCL holding the owner's pid. It is
// held for the daemon's whole life, so two `adi daemon start` at the same moment make one daemon. A
// lock whose owner is dead (or is a reused pid that is no adi daemon) is stale and taken over.

import fs from 'node:fs';

export interface Lock {
  readonly file: string;
  release(): void;
}

function readPid(file: string): number | null {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Whether `pid` is a live adi daemon (on Linux the command line is checked, so a reused pid does not count). */
export function isLiveDaemon(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('daemon');
    return i >= 0 && argv[i + 1] === 'run';
  } catch {
    return false;
  }
}

/**
 * Create the lock with its content already in place: write a private temp file, then link() it to the
 * lock name, which fails if the lock exists. Nobody ever sees an empty lock file.
 */
function tryCreate(file: string): boolean {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    // Inside the try: a write that fails (a full disk) must not leave the temp file behind either.
    fs.writeFileSync(tmp, `${process.pid}\n`, { mode: 0o600 });
    fs.linkSync(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Take the lock, or return the pid of the live daemon that holds it. */
export function acquireLock(file: string): Lock | { heldBy: number } {
  for (let attempt = 0; attempt < 10; attempt++) {
    if (tryCreate(file)) {
      return {
        file,
        release() {
          if (readPid(file) === process.pid) fs.rmSync(file, { force: true });
        },
      };
    }
    const holder = readPid(file);
    if (holder !== null && holder !== process.pid && isLiveDaemon(holder)) return { heldBy: holder };
    // Stale. Move it aside atomically, then check that what was moved is the stale lock we judged and
    // not a fresh one another starter created in between; if it was fresh, put it back and yield.
    const aside = `${file}.stale-${process.pid}`;
    try {
      fs.renameSync(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const moved = readPid(aside);
    if (moved === holder) {
      fs.rmSync(aside, { force: true });
      continue;
    }
    try {
      fs.linkSync(aside, file);
    } catch {
      // someone created a newer lock meanwhile; theirs stands
    }
    fs.rmSync(aside, { force: true });
    if (moved !== null) return { heldBy: moved };
  }
  throw new Error(`Could not take the daemon lock ${file} after 10 attempts.`);
}
