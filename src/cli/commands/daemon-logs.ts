import type { DaemonClient } from '../../client/client.js';
import { AdiError } from '../../errors.js';
import { parseLogLine } from '../../logs/log-line.js';
import { checkName } from '../../paths.js';
import { parseCommandArgs, type CliIO, type Command } from '../command.js';
import { connectedClient } from '../daemon-client.js';
import { displayLine, keepLine, lastLines, mergeByTime, parseSince, prefixed, useColour, type LineFilter } from '../log-view.js';

export { displayLine } from '../log-view.js';

/** Lines read per service when a filter is given without -n: filters look further back than 100 lines. */
const FILTER_LINES = 10_000;
/** Overlap re-read when following several services, so no line written meanwhile is missed. */
const FOLLOW_OVERLAP = 1000;

export const command: Command = {
  name: 'daemon logs',
  summary: "Show a service's log",
  usage: `Usage: adi daemon logs NAME... [-n N] [-f] [--since TIME] [--stderr]
       adi daemon logs --all [-n N] [-f] [--since TIME] [--stderr]

Prints the last N lines (default 100; 10 with -f) of the service's stdout and stderr, each prefixed by
its timestamp; stderr lines are marked [err], the supervisor's own notes [sys]. Several services (or
--all) are merged by time, each line prefixed by its service (coloured on a terminal unless NO_COLOR
is set).
  -a, --all         Every service the daemon knows
  -n, --lines N     How many of the services' own lines (the supervisor's [sys] notes between them
                    are shown too and not counted)
  -f, --follow      Keep printing new lines as they are written (Ctrl-C to stop)
  --since TIME      Only lines from TIME on: 30s, 10m, 2h, 1d (ago) or 2024-05-01T12:00:00Z; reads up to
                    ${FILTER_LINES} lines per service unless -n says otherwise
  --stderr          Only the services' stderr lines`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('daemon logs', argv, {
      lines: { type: 'string', short: 'n' },
      follow: { type: 'boolean', short: 'f' },
      all: { type: 'boolean', short: 'a' },
      since: { type: 'string' },
      stderr: { type: 'boolean' },
    });
    if (values.all === true && positionals.length > 0) throw new AdiError('BAD_ARGUMENT', "Give service names or --all, not both. See 'adi daemon logs --help'.");
    if (values.all !== true && positionals.length === 0) throw new AdiError('BAD_ARGUMENT', "Name a service, or give --all. See 'adi daemon logs --help'.");
    const names = positionals.map((n) => checkName('service', n));
    const explicit = values.lines === undefined ? null : Number(values.lines);
    if (explicit !== null && (!Number.isInteger(explicit) || explicit < 0)) throw new AdiError('BAD_ARGUMENT', `-n takes a whole number of 0 or more, got '${values.lines}'.`);
    const filter: LineFilter = { since: values.since === undefined ? null : parseSince(values.since), stderrOnly: values.stderr === true };
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
      const view = new View(io, services, values.all === true || services.length > 1);
      if (services.length === 1 && values.all !== true) {
        const name = services[0] as string;
        if (values.follow) {
          for await (const line of client.followServiceLogs(name, { lines: read })) if (keepLine(line, filter)) view.print(name, line);
        } else {
          const lines = (await client.serviceLogs(name, { lines: read })).filter((l) => keepLine(l, filter));
          view.printAll((limit === null ? lines : lastLines(lines, limit, (l) => l)).map((line) => ({ service: name, line })));
        }
        return 0;
      }
      return await several(client, view, services, { read, limit, filter, follow: values.follow === true });
    } finally {
      client.close();
    }
  },
};

class View {
  private readonly colour: boolean;
  private readonly width: number;

  constructor(readonly io: CliIO, services: string[], private readonly prefix: boolean) {
    this.colour = useColour(io.stdout, io.env);
    this.width = Math.max(...services.map((s) => s.length));
  }

  format(service: string, line: string): string {
    return this.prefix ? prefixed(service, this.width, displayLine(line), this.colour) : displayLine(line);
  }

  print(service: string, line: string): void {
    this.io.stdout.write(`${this.format(service, line)}\n`);
  }

  printAll(lines: ReadonlyArray<{ service: string; line: string }>): void {
    if (lines.length > 0) this.io.stdout.write(`${lines.map((l) => this.format(l.service, l.line)).join('\n')}\n`);
  }
}

interface SeveralOptions {
  read: number;
  limit: number | null;
  filter: LineFilter;
  follow: boolean;
}

/** Several services: their tails merged by time; with follow, then each new line as it comes. */
async function several(client: DaemonClient, view: View, services: string[], opts: SeveralOptions): Promise<number> {
  const failures: AdiError[] = [];
  const tails = await Promise.all(services.map(async (service) => {
    try {
      return { service, lines: await client.serviceLogs(service, { lines: opts.read }) };
    } catch (err) {
      // A service removed since the list was taken: the others are still worth showing.
      if (!(err instanceof AdiError) || err.code !== 'SERVICE_NOT_FOUND') throw err;
      return { service, lines: [] };
    }
  }));
  const merged = mergeByTime(tails).filter((l) => keepLine(l.line, opts.filter));
  view.printAll(opts.limit === null ? merged : lastLines(merged, opts.limit, (l) => l.line));
  if (!opts.follow) return 0;

  // The follow streams resend the last lines; what was printed already (same time, same text) is
  // skipped, which closes the gap between reading the tails and subscribing.
  const seen = new Map<string, { time: string; lines: Set<string> }>();
  for (const { service, lines } of tails) {
    const last = lines.length > 0 ? parseLogLine(lines[lines.length - 1] as string)?.time : undefined;
    if (last !== undefined) seen.set(service, { time: last, lines: new Set(lines.filter((l) => parseLogLine(l)?.time === last)) });
  }
  const overlap = Math.min(opts.read, FOLLOW_OVERLAP);
  await Promise.all(services.map(async (service) => {
    const mark = seen.get(service);
    try {
      for await (const line of client.followServiceLogs(service, { lines: overlap })) {
        if (mark !== undefined) {
          const time = parseLogLine(line)?.time;
          if (time !== undefined && (time < mark.time || (time === mark.time && mark.lines.has(line)))) continue;
        }
        if (keepLine(line, opts.filter)) view.print(service, line);
      }
    } catch (err) {
      if (!(err instanceof AdiError)) throw err;
      failures.push(err);
      view.io.stderr.write(`adi: ${service}: ${err.message}\n`);
    }
  }));
  // Every stream ended: the daemon stopped, or each service went away.
  if (failures.length > 0 && failures.length === services.length) throw failures[0] as AdiError;
  return 0;
}
