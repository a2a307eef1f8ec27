// Turns the raw byte chunks of one child stream into lines. Bytes are kept, not decoded, until a line is
// complete, so a UTF-8 character split across two pipe reads is decoded whole, and any split of the same
// bytes into chunks yields the same lines.

/**
 * The longest line kept whole. A longer line is cut into pieces of at most this many bytes, so the
 * memory held per stream is bounded even if a child writes megabytes without a newline.
 */
export const MAX_LINE_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

function isContinuation(byte: number | undefined): boolean {
  return byte !== undefined && (byte & 0xc0) === 0x80;
}

/**
 * Where to cut `buf` (longer than `max`) so the first piece is at most `max` bytes: at `max`, or up to 3
 * bytes earlier so a UTF-8 character is not cut in two. Looks at bytes up to index `max` only, so the cut
 * of a line is the same whether it is known in full or only its first `max + 1` bytes.
 */
export function cutPoint(buf: Uint8Array, max: number): number {
  let c = max;
  for (let back = 0; back < 3 && c > 1 && isContinuation(buf[c]); back++) c--;
  // Still inside a run of continuation bytes: not valid UTF-8 anyway, so no better place than `max`.
  return isContinuation(buf[c]) ? max : c;
}

export class LineSplitter {
  /** Bytes after the last newline seen; their total stays at most maxLine + 1 between calls. */
  private parts: Buffer[] = [];
  private partLength = 0;

  constructor(private readonly maxLine: number = MAX_LINE_BYTES) {
    // cutPoint backs off up to 3 bytes; a smaller limit could produce empty pieces.
    if (!Number.isInteger(maxLine) || maxLine < 4) throw new RangeError(`maxLine must be an integer >= 4, got ${maxLine}`);
  }

  /** Bytes held for the partial trailing line. */
  get pending(): number {
    return this.partLength;
  }

  /**
   * Feed one chunk; returns the complete lines (and long-line pieces) it finishes, oldest first. The
   * returned buffers may be views of `chunk`: use them before the chunk is reused.
   */
  push(chunk: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    let nl = buf.indexOf(LF, start);
    while (nl !== -1) {
      let line = buf.subarray(start, nl);
      if (this.partLength > 0) {
        this.parts.push(line);
        line = Buffer.concat(this.parts, this.partLength + line.length);
        this.parts = [];
        this.partLength = 0;
      }
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      this.emit(line, out);
      start = nl + 1;
      nl = buf.indexOf(LF, start);
    }
    if (start < buf.length) {
      // Copy: the caller may reuse its chunk buffer after we return.
      this.parts.push(Buffer.from(buf.subarray(start)));
      this.partLength += buf.length - start;
      this.cutPending(out);
    }
    return out;
  }

  /** The partial trailing line (as is: there was no newline, so no '\r' to strip), or [] if none. */
  flush(): Buffer[] {
    if (this.partLength === 0) return [];
    const line = Buffer.concat(this.parts, this.partLength);
    this.parts = [];
    this.partLength = 0;
    const out: Buffer[] = [];
    this.emit(line, out);
    return out;
  }

  private emit(line: Buffer, out: Buffer[]): void {
    let rest = line;
    while (rest.length > this.maxLine) {
      const c = cutPoint(rest, this.maxLine);
      out.push(rest.subarray(0, c));
      rest = rest.subarray(c);
    }
    out.push(rest);
  }

  /**
   * Emit pieces of the pending line once it is certain to be cut: at maxLine + 2 bytes, even a '\r'
   * stripped at its end leaves more than maxLine. Cutting exactly where emit() would keeps the result
   * independent of how the bytes were chunked.
   */
  private cutPending(out: Buffer[]): void {
    if (this.partLength < this.maxLine + 2) return;
    let rest = Buffer.concat(this.parts, this.partLength);
    while (rest.length >= this.maxLine + 2) {
      const c = cutPoint(rest, this.maxLine);
      out.push(rest.subarray(0, c));
      rest = rest.subarray(c);
    }
    // Copy the short rest, so the possibly large concatenation is not kept alive by a view of it.
    this.parts = [Buffer.from(rest)];
    this.partLength = rest.length;
  }
}
