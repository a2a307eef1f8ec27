// The daemon's file descriptors are a budget with a reserve kept for the admin. Node (libuv) accepts
// connections on its own: when the fd table is full it accepts and at once closes each new connection
// (its "EMFILE trick"), so every client, the admin included, sees CONNECTION_CLOSED, and the daemon
// cannot even be told to stop a service. So the table is never let fill up: above `limit - reserve`
// open descriptors, a new service run is refused with a message saying so, and each new connection
// makes room by closing the oldest connections that have not proven to be the admin. The reserve is
// then always free for an admin's connection and the requests it makes. The mark also leaves room
// for the descriptors the resource sampler may still open (it keeps up to limit / 8 /proc files open
// between listings, see resources.ts): they are opened later, by a listing, not by a spawn.

import fs from 'node:fs';
import { heldStatBudget } from '../system/proc.js';

export interface FdBudgetOptions {
  /** The soft RLIMIT_NOFILE; default: read from /proc/self/limits (null: unknown, no budget). */
  limit?: number | null;
  /** Descriptors kept free for the admin; default: limit / 16, between 16 and 64. */
  reserve?: number;
  /** Descriptors others may open later without asking (the resource sampler's); default: its bound. */
  later?: number;
  /** Count the open descriptors; default: the entries of /proc/self/fd. */
  count?: () => number | null;
}

/** Descriptors a spawn needs while it runs (stdio pipes, libuv's exec-error pipe) beyond what the run keeps. */
const SPAWN_MARGIN = 8;
/** While far from the limit, a count is reused for this long (a connection storm does not readdir each time). */
const RECOUNT_MS = 100;

export class FdBudget {
  readonly limit: number | null;
  readonly reserve: number;
  /** Above this many open descriptors, runs are refused and connections make room. */
  readonly mark: number;
  private readonly count: () => number | null;
  private counted: number | null = null;
  private countedAt = 0;
  /** Descriptors taken since the last count (accepts, spawns), added to it until the next one. */
  private since = 0;

  constructor(opts: FdBudgetOptions = {}) {
    this.limit = opts.limit !== undefined ? opts.limit : softFdLimit();
    this.reserve = opts.reserve ?? (this.limit === null ? 0 : Math.max(16, Math.min(64, Math.floor(this.limit / 16))));
    this.count = opts.count ?? countOpenFds;
    const later = opts.later ?? (this.limit === null ? 0 : heldStatBudget(`Max open files ${this.limit}`));
    this.mark = this.limit === null ? Infinity : Math.max(0, this.limit - this.reserve - later);
  }

  /** Open descriptors now (exact when near the limit, else possibly a recent count plus what was taken since). */
  inUse(): number | null {
    if (this.limit === null) return null;
    const now = Date.now();
    const estimate = this.counted === null ? null : this.counted + this.since;
    if (estimate === null || now - this.countedAt > RECOUNT_MS || estimate >= this.limit / 2) {
      this.counted = this.count();
      this.countedAt = now;
      this.since = 0;
      return this.counted;
    }
    return estimate;
  }

  /** A connection was accepted: whether the daemon is now inside its reserve (room must be made). */
  acceptedIntoReserve(): boolean {
    const used = this.inUse();
    this.since++;
    return used !== null && used >= this.mark;
  }

  /** Why a new service run may not start now, or null when it may. */
  spawnRefusal(): string | null {
    const used = this.inUse();
    if (used === null || used + SPAWN_MARGIN < this.mark) {
      this.since += SPAWN_MARGIN;
      return null;
    }
    return `the daemon has ${used} of its ${this.limit} file descriptors open, and keeps ${this.reserve} free so that an admin can always connect; stop a service or raise the daemon's limit (ulimit -n)`;
  }
}

/** The soft limit on open files, from /proc/self/limits; null where unknown or unlimited. */
export function softFdLimit(): number | null {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    const n = Number(soft);
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

function countOpenFds(): number | null {
  try {
    // The directory's own descriptor is listed too.
    return fs.readdirSync('/proc/self/fd').length - 1;
  } catch {
    return null;
  }
}
