import { LIMITS } from '../../protocol/validate.js';
import type { DaemonClient, LogEntry, RawLogBatch } from '../../client/client.js';
import { AdiError } from '../../core/errors.js';
import { checkName } from '../../core/paths.js';
import { defineCommand, type CliIO } from '../command.js';
import { connectedClient } from '../daemon-client.js';
import {
  entryPrefix,
  formatBatch,
  keepEntry,
  lastLines,
  mergeByTime,
  parseSince,
  safeText,
  servicePrefix,
  useColour,
  type LineFilter,
  type SourcedEntry,
} from '../log-view.js';

/** Lines read per service when a filter is given without -n: filters look further back than 100 lines. */
const FILTER_LINES = 10_000;

export const command = defineCommand({
  name: 'daemon logs',
  usage: `adi daemon logs NAME... [options]
       adi daemon logs --all [options]`,
  args: [{ name: 'NAME', variadic: true, optional: true, service: true }],
  options: {
    all: { type: 'boolean', short: 'a', help: 'Every service the daemon knows' },
    lines: {
      type: 'string',
      short: 'n',
      value: 'N',
      help: "How many of the services' own lines (the supervisor's [sys] notes between them are shown too and not counted)",
    },
    follow: { type: 'boolean', short: 'f', help: 'Keep printing new lines as they are written (Ctrl-C to stop)' },
    since: {
      type: 'string',
      value: 'TIME',
      help: `Only lines from TIME on: 30s, 10m, 2h, 1d (ago) or 2024-05-01T12:00:00Z; reads up to ${FILTER_LINES} lines per service unless -n says otherwise`,
    },
    stderr: { type: 'boolean', help: "Only the services' stderr lines" },
    raw: { type: 'boolean', help: "The services' bytes as written, control characters included" },
  },
  description: `Prints the last N lines (default 100; 10 with -f) of the service's stdout and stderr, each prefixed by
its timestamp; stderr lines are marked [err], the supervisor's own notes [sys]. Several services (or
--all) are merged by time, each line prefixed by its service (coloured on a terminal unless NO_COLOR
is set). Control characters a service wrote are shown visibly (ESC as ^[), so its output cannot
move the cursor or retitle the terminal; --raw prints its bytes as they are.`,
  async run({ values, positionals }, io) {
    if (values.all === true && positionals.length > 0)
      throw new AdiError('BAD_ARGUMENT', "Give service names or --all, not both. See 'adi daemon logs --help'.");
    if (values.all !== true && positionals.length === 0)
      throw new AdiError('BAD_ARGUMENT', "Name a service, or give --all. See 'adi daemon logs --help'.");
    const names = positionals.map((n) => checkName('service', n));
    const explicit = values.lines === undefined ? null : Number(values.lines);
    if (explicit !== null && (!Number.isInteger(explicit) || explicit < 0))
      throw new AdiError('BAD_ARGUMENT', `-n takes a whole number of 0 or more, got '${values.lines}'.`);
    if (explicit !== null && explicit > LIMITS.logLines)
      throw new AdiError('BAD_ARGUMENT', `-n takes at most ${LIMITS.logLines} lines, got ${explicit}.`);
    const filter: LineFilter = {
      since: values.since === undefined ? null : parseSince(values.since),
      stderrOnly: values.stderr === true,
    };
    const filtered = filter.since !== null || filter.stderrOnly;
    const read = explicit ?? (filtered ? FILTER_LINES : values.follow ? 10 : 100);
    // With a filter and no -n, everything read that passes is shown.
    const limit = explicit ?? (filtered ? null : read);

    const client = await connectedClient(io);
    try {
      const services = values.all === true ? (await client.listServices()).map((s) => s.name) : names;
      if (services.length === 0) {
        io.stderr.write("adi: no services (define them in services.toml, or 'adi daemon start NAME -- COMMAND')\n");
        return 0;
      }
      const view = new View(io, services, values.all === true || services.length > 1, values.raw === true);
      if (services.length === 1 && values.all !== true) {
        const name = services[0] as string;
        if (!filtered) {
          // Printed batch by batch as it arrives: a tail of a million lines never sits whole in memory.
          for await (const batch of client.readServiceLogBatches(name, { lines: read, follow: values.follow === true }))
            await view.writeBatch(batch);
        } else if (values.follow) {
          for await (const batch of client.readServiceLogs(name, { lines: read, follow: true })) {
            await view.write(batch.filter((e) => keepEntry(e, filter)).map((entry) => ({ service: name, entry })));
          }
        } else {
          const kept: LogEntry[] = [];
          for await (const batch of client.readServiceLogs(name, { lines: read }))
            for (const e of batch) if (keepEntry(e, filter)) kept.push(e);
          await view.write(
            (limit === null ? kept : lastLines(kept, limit, (e) => e)).map((entry) => ({ service: name, entry })),
          );
        }
        return 0;
      }
      return await several(client, view, services, { read, limit, filter, follow: values.follow === true });
    } finally {
      client.close();
    }
  },
});

class View {
  private readonly colour: boolean;
  private readonly width: number;

  constructor(
    readonly io: CliIO,
    services: string[],
    private readonly prefix: boolean,
    private readonly raw: boolean,
  ) {
    this.colour = useColour(io.stdout, io.env);
    this.width = Math.max(...services.map((s) => s.length));
  }

  /** Print lines; waits while the terminal or pipe is behind, so output never piles up in memory. */
  async write(lines: readonly SourcedEntry[]): Promise<void> {
    if (lines.length === 0) return;
    let chunk: string | Buffer;
    if (this.raw) {
      const parts: Buffer[] = [];
      for (const { service, entry } of lines)
        parts.push(Buffer.from(this.lead(service) + entryPrefix(entry)), entry.text, NEWLINE);
      chunk = Buffer.concat(parts);
    } else {
      let text = '';
      for (const { service, entry } of lines)
        text += `${this.lead(service)}${entryPrefix(entry)}${safeText(entry.text)}\n`;
      chunk = text;
    }
    await this.out(chunk);
  }

  /** A batch of one service (no service prefix, no filter): formatted whole. */
  async writeBatch(batch: RawLogBatch): Promise<void> {
    if (batch.runs.length > 0) await this.out(formatBatch(batch, '', this.raw));
  }

  private async out(chunk: string | Buffer): Promise<void> {
    if (!this.io.stdout.write(chunk))
      await new Promise<void>((resolve) => this.io.stdout.once('drain', () => resolve()));
  }

  private lead(service: string): string {
    return this.prefix ? servicePrefix(service, this.width, this.colour) : '';
  }
}

const NEWLINE = Buffer.from('\n');

interface SeveralOptions {
  read: number;
  limit: number | null;
  filter: LineFilter;
  follow: boolean;
}

/** Several services: their tails merged by time; with follow, then each new line from where each tail ended. */
async function several(client: DaemonClient, view: View, services: string[], opts: SeveralOptions): Promise<number> {
  const failures: AdiError[] = [];
  const tails = await Promise.all(
    services.map(async (service) => {
      const entries: LogEntry[] = [];
      const stream = client.readServiceLogs(service, { lines: opts.read });
      try {
        for await (const batch of stream) entries.push(...batch);
      } catch (err) {
        // A service removed since the list was taken: the others are still worth showing.
        if (!(err instanceof AdiError) || err.code !== 'SERVICE_NOT_FOUND') throw err;
        return { service, entries, cursor: null };
      }
      return { service, entries, cursor: stream.cursor };
    }),
  );
  const merged = mergeByTime(tails).filter((l) => keepEntry(l.entry, opts.filter));
  await view.write(opts.limit === null ? merged : lastLines(merged, opts.limit, (l) => l.entry));
  if (!opts.follow) return 0;

  // Each follow starts at the cursor its tail ended at: no line twice, none missed in between.
  const live = tails.filter((t) => t.cursor !== null);
  await Promise.all(
    live.map(async ({ service, cursor }) => {
      try {
        for await (const batch of client.readServiceLogs(service, { cursor, follow: true })) {
          await view.write(batch.filter((e) => keepEntry(e, opts.filter)).map((entry) => ({ service, entry })));
        }
      } catch (err) {
        if (!(err instanceof AdiError)) throw err;
        failures.push(err);
        view.io.stderr.write(`adi: ${service}: ${err.message}\n`);
      }
    }),
  );
  // Every stream ended: the daemon stopped, or each service went away.
  if (failures.length > 0 && failures.length === live.length) throw failures[0] as AdiError;
  return 0;
}
