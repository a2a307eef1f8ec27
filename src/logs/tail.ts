// The last n lines of a log, read backwards from the end in blocks: asking for 5 lines of a 10 MiB file
// reads one block, not the file. Files are given newest first (live, .1, .2, ...) and are read in that
// order until enough lines are found.

import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';

export const TAIL_BLOCK_BYTES = 64 * 1024;

export interface TailOptions {
  /** Bytes per backwards read (tests use tiny blocks to hit every boundary case). */
  blockSize?: number;
  /** Incremented by the bytes actually read, so a test can check that only the end was read. */
  stats?: { bytesRead: number };
  /**
   * Which lines count towards n (default: all). Lines that do not count are still returned where they
   * fall, so the supervisor's own notes show between the service's lines without displacing them.
   */
  counts?: (line: string) => boolean;
}

/** Lines that do not count are bounded too: a log of nothing but notes is not read whole. */
const MAX_UNCOUNTED = 10_000;

interface Collect {
  out: string[];
  want: number;
  counted: number;
  counts: (line: string) => boolean;
}

function more(c: Collect): boolean {
  return c.counted < c.want && c.out.length - c.counted < MAX_UNCOUNTED;
}

function push(c: Collect, line: string): void {
  c.out.push(line);
  if (c.counts(line)) c.counted++;
}

const LF = 0x0a;

/** Up to `n` last complete lines of `files` (newest file first), returned oldest first. */
export async function readTail(files: readonly string[], n: number, options: TailOptions = {}): Promise<string[]> {
  const c: Collect = { out: [], want: n, counted: 0, counts: options.counts ?? (() => true) };
  if (n <= 0) return c.out;
  for (const file of files) {
    await tailOne(file, c, options);
    if (!more(c)) break;
  }
  return c.out.reverse();
}

/** Append the lines of `file`, newest first, to `c.out` until enough lines count. */
async function tailOne(file: string, c: Collect, options: TailOptions): Promise<void> {
  let fh: FileHandle;
  try {
    // O_NOFOLLOW: a symlink planted among the rotated files must not make us show another file.
    fh = await open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return;
    throw err;
  }
  try {
    const blockSize = options.blockSize ?? TAIL_BLOCK_BYTES;
    let pos = (await fh.stat()).size;
    // Bytes of the line being assembled: the start of a later block's first line, in file order.
    let carry: Buffer[] = [];
    // The bytes after the last '\n' are a line still being written (or none): never return them.
    let atEnd = true;
    while (pos > 0 && more(c)) {
      const len = Math.min(blockSize, pos);
      pos -= len;
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
        if (bytesRead === 0) return; // the file shrank under us (truncated): keep what we have
        got += bytesRead;
      }
      if (options.stats) options.stats.bytesRead += len;

      let end = len;
      while (more(c)) {
        // Guard end > 0: lastIndexOf with a negative offset would search from the end again.
        const nl = end > 0 ? buf.lastIndexOf(LF, end - 1) : -1;
        if (nl === -1) {
          carry.unshift(buf.subarray(0, end));
          break;
        }
        if (atEnd) atEnd = false;
        else push(c, Buffer.concat([buf.subarray(nl + 1, end), ...carry]).toString('utf8'));
        carry = [];
        end = nl;
      }
    }
    // The file's first line has no '\n' before it.
    if (pos === 0 && !atEnd && more(c)) push(c, Buffer.concat(carry).toString('utf8'));
  } finally {
    await fh.close();
  }
}
