// A one-line spinner on stderr for the CLI's long waits (daemon start, daemon stop). Only on a
// terminal: in a pipe, a log file or CI it writes nothing, so scripted output stays clean.

import type { CliIO } from './command.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_MS = 80;
/** Waits shorter than this show nothing: a spinner that flashes for 50 ms is noise. */
const SHOW_AFTER_MS = 300;

export interface Progress {
  /** Change the text (e.g. a count that went down). */
  update(text: string): void;
  /** Erase the line. Idempotent. */
  stop(): void;
}

const NONE: Progress = { update: () => undefined, stop: () => undefined };

export function startProgress(io: Pick<CliIO, 'stderr' | 'env'>, text: string): Progress {
  if (io.stderr.isTTY !== true || io.env['TERM'] === 'dumb') return NONE;
  const started = Date.now();
  let current = text;
  let frame = 0;
  let drawn = false;
  const draw = (): void => {
    const secs = Math.floor((Date.now() - started) / 1000);
    io.stderr.write(`\r\x1b[K${FRAMES[frame++ % FRAMES.length]} ${current}${secs >= 1 ? ` (${secs}s)` : ''}`);
    drawn = true;
  };
  let timer: NodeJS.Timeout | null = null;
  const delay = setTimeout(() => {
    draw();
    timer = setInterval(draw, FRAME_MS);
    timer.unref();
  }, SHOW_AFTER_MS);
  // The spinner never keeps the CLI alive by itself.
  delay.unref();
  return {
    update(next) {
      current = next;
    },
    stop() {
      clearTimeout(delay);
      if (timer !== null) clearInterval(timer);
      timer = null;
      if (drawn) io.stderr.write('\r\x1b[K');
      drawn = false;
    },
  };
}

/** Run `work` with a spinner showing `text`; the line is erased whatever happens. */
export async function withProgress<T>(
  io: Pick<CliIO, 'stderr' | 'env'>,
  text: string,
  work: (progress: Progress) => Promise<T>,
): Promise<T> {
  const progress = startProgress(io, text);
  try {
    return await work(progress);
  } finally {
    progress.stop();
  }
}
