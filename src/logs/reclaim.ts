// Giving memory back after bursts of log traffic. Every pipe read and every stream frame is a Buffer of
// its own, freed only when V8 collects the object holding it. V8 counts these bytes as external memory
// and collects for them only past tens of megabytes, and never once the daemon is idle: a flood alone
// held 35 MB of read buffers, and 200 followers that had left still held 15 MB of frames and a 16 MB
// young generation. So the daemon asks V8: a young-generation collection (about 1 ms) after every
// CAPTURE_BYTES read from services, and two full ones (10-25 ms each) once the last log stream of a busy
// period has ended (the second gives the young generation back).

import v8 from 'node:v8';
import vm from 'node:vm';

type Collect = (options?: { type: 'minor' }) => void;

let collect: Collect | null | undefined;

/** V8's gc(), exposed at run time: the daemon is also started by boot units, which pass no node flags. */
function collector(): Collect | null {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as Collect;
    } catch {
      collect = null;
    }
  }
  return collect;
}

const CAPTURE_BYTES = 4 * 1024 * 1024;
let captured = 0;

/** Bytes read from a service's pipe and stored: their buffers are garbage from here on. */
export function noteCaptured(bytes: number): void {
  captured += bytes;
  if (captured < CAPTURE_BYTES) return;
  captured = 0;
  collector()?.({ type: 'minor' });
}

/** Stream bytes sent since the last full collection: below this a busy period is not worth one. */
const STREAMED_BYTES = 16 * 1024 * 1024;
/** How long no log stream must be open before the full collection. */
const QUIET_MS = 1000;
let streamed = 0;
let timer: NodeJS.Timeout | null = null;

export function noteStreamed(bytes: number): void {
  streamed += bytes;
}

/** The number of open log streams changed: once none is left after a busy period, collect. */
export function streamsChanged(open: number): void {
  if (open > 0) {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    return;
  }
  if (streamed < STREAMED_BYTES || timer !== null) return;
  timer = setTimeout(() => {
    timer = null;
    streamed = 0;
    const gc = collector();
    gc?.();
    gc?.();
  }, QUIET_MS);
  timer.unref();
}
