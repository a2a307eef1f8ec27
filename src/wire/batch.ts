// Frames waiting to leave in one write. The first frame of a burst schedules the flush (a microtask);
// frames added in the same run of the event loop join it, so a burst of requests (client) or of
// answers (daemon) costs one write(2), not one per frame. Both ends of a connection use it.

export class WriteBatch {
  private frames: Buffer[] = [];
  private total = 0;

  /** `flush` runs once per burst, after the microtasks of the run that added its first frame. */
  constructor(private readonly flush: () => void) {}

  /** Bytes gathered and not yet taken. */
  get bytes(): number {
    return this.total;
  }

  add(frame: Buffer): void {
    this.frames.push(frame);
    this.total += frame.length;
    if (this.frames.length === 1) queueMicrotask(this.flush);
  }

  /** Everything gathered, as one buffer (null when nothing waits); the batch is empty afterwards. */
  take(): Buffer | null {
    const frames = this.frames;
    if (frames.length === 0) return null;
    const total = this.total;
    this.clear();
    return frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames, total);
  }

  clear(): void {
    this.frames = [];
    this.total = 0;
  }
}
