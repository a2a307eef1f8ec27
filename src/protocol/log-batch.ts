// A batch of log lines as they travel (the LogBatch frame) and as readers hand them over: the lines'
// bytes, each followed by '\n' (a line never holds one), and runs of [time, stream, count] saying when
// each line ended and which stream it is. Lines of one chunk share a time, so a flood of short lines
// costs a few numbers per chunk, not per line. Shared by the daemon and the client.

export type LogStreamName = 'out' | 'err' | 'sys';
export const LOG_STREAMS: readonly LogStreamName[] = ['out', 'err', 'sys'];

export interface LogLine {
  /** When the line ended: ms since the epoch. */
  time: number;
  /** 0 stdout, 1 stderr, 2 the supervisor's note. */
  stream: number;
  /** The line's bytes as the service wrote them, without the '\n'. */
  text: Buffer;
}

export interface LogBatchData {
  data: Uint8Array;
  runs: number[];
}

/** The lines of a batch (views into its data). Throws if data and runs disagree. */
export function splitBatch(batch: LogBatchData): LogLine[] {
  const data = Buffer.isBuffer(batch.data)
    ? batch.data
    : Buffer.from(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength);
  const out: LogLine[] = [];
  let at = 0;
  for (let i = 0; i + 2 < batch.runs.length; i += 3) {
    const time = batch.runs[i] as number;
    const stream = batch.runs[i + 1] as number;
    const count = batch.runs[i + 2] as number;
    for (let k = 0; k < count; k++) {
      const nl = data.indexOf(10, at);
      if (nl === -1) throw new Error('log batch: fewer lines in data than its runs count');
      out.push({ time, stream, text: data.subarray(at, nl) });
      at = nl + 1;
    }
  }
  if (at !== data.length) throw new Error('log batch: more lines in data than its runs count');
  return out;
}

/** Count '\n' in buf[from, to). */
export function countLines(buf: Buffer, from = 0, to = buf.length): number {
  let n = 0;
  for (let i = buf.indexOf(10, from); i !== -1 && i < to; i = buf.indexOf(10, i + 1)) n++;
  return n;
}
