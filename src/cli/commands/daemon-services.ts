import { AdiError } from '../../core/errors.js';
import type { ServiceInfo } from '../../protocol/types.js';
import type { DaemonClient } from '../../client/client.js';
import { defineCommand, type CliIO } from '../command.js';
import { connectedClient } from '../daemon-client.js';
import { formatBytes, formatDuration } from '../output.js';
import { writeReports } from '../reports.js';

/** The lines under the table: names several sources define, and which definitions were not loaded. */
export function conflictsText(conflicts: readonly string[]): string {
  if (conflicts.length === 0) return '';
  return `\nName conflicts (a service name belongs to one source; these definitions are not loaded):\n${conflicts.map((c) => `  ${c}\n`).join('')}`;
}

export function servicesTable(list: ServiceInfo[]): string {
  const header = ['NAME', 'STATE', 'PID', 'CPU%', 'MEM', 'UPTIME', 'RESTARTS', 'LAST ERROR'];
  const rows = list.map((s) => [
    s.name,
    s.state,
    s.pid === null ? '-' : String(s.pid),
    s.cpu_percent === null ? '-' : s.cpu_percent.toFixed(1),
    s.memory_bytes === null ? '-' : formatBytes(s.memory_bytes),
    s.uptime_secs === null ? '-' : formatDuration(s.uptime_secs),
    String(s.restarts),
    s.last_error ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** The options of a watch (`adi daemon top` has them too). */
export const WATCH_OPTIONS = {
  json: {
    type: 'boolean',
    help: `Print the array of ServiceInfo objects (see docs/protocol.md); cpu_percent and memory_bytes are numbers,
      null when the service does not run; name conflicts go to stderr (and are in each service's "conflicts")`,
  },
  interval: { type: 'string', value: 'SECS', help: 'Seconds between refreshes (default 2)' },
  count: { type: 'string', value: 'N', help: 'Stop after N refreshes' },
} as const;

export const command = defineCommand({
  name: 'daemon services',
  args: [],
  options: {
    json: WATCH_OPTIONS.json,
    watch: {
      type: 'boolean',
      short: 'w',
      help: 'Refresh every interval until Ctrl-C: in place on a terminal; otherwise (a pipe or a file) one timestamped table, or with --json one array per line, per interval',
    },
    interval: WATCH_OPTIONS.interval,
    count: WATCH_OPTIONS.count,
  },
  description: `Lists every service the daemon knows: name, state, pid, CPU % (of one core, since the previous
listing or, the first time, since the service started), memory (resident, the whole process group),
uptime, automatic restarts and last error.

A name defined by more than one source (services.toml, plugins) is listed under the table with
the definitions that were not loaded.`,
  notes: "'adi daemon top' is 'adi daemon services --watch'.",
  async run({ values }, io) {
    if (values.watch !== true && (values.interval !== undefined || values.count !== undefined)) {
      throw new AdiError('BAD_ARGUMENT', "--interval and --count go with --watch. See 'adi daemon services --help'.");
    }
    const client = await connectedClient(io);
    try {
      if (values.watch === true) return await watchServices(client, io, watchOptions(values));
      const { list, conflicts = [], ...reports } = await client.listServicesReport();
      if (values.json) {
        io.stdout.write(`${JSON.stringify(list)}\n`);
        for (const c of conflicts) io.stderr.write(`adi: name conflict: ${c}\n`);
      } else {
        if (list.length === 0)
          io.stdout.write("no services (define them in services.toml, or 'adi daemon start NAME -- COMMAND')\n");
        else io.stdout.write(servicesTable(list));
        io.stdout.write(conflictsText(conflicts));
      }
      writeReports(io.stderr, reports);
      return 0;
    } finally {
      client.close();
    }
  },
});

export interface WatchOptions {
  json: boolean;
  intervalMs: number;
  count: number | null;
}

export function watchOptions(values: { json?: boolean; interval?: string; count?: string }): WatchOptions {
  const interval = values.interval === undefined ? 2 : Number(values.interval);
  // Bounded below: each refresh is a /proc pass in the daemon.
  if (!Number.isFinite(interval) || interval < 0.1 || interval > 86_400) {
    throw new AdiError('BAD_ARGUMENT', `--interval takes seconds between 0.1 and 86400, got '${values.interval}'.`);
  }
  const count = values.count === undefined ? null : Number(values.count);
  if (count !== null && (!Number.isInteger(count) || count < 1)) {
    throw new AdiError('BAD_ARGUMENT', `--count takes a whole number of 1 or more, got '${values.count}'.`);
  }
  return { json: values.json === true, intervalMs: Math.round(interval * 1000), count };
}

const CLEAR_HOME = '\x1b[H\x1b[2J';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

/** `--watch` / `adi daemon top`: list every interval until Ctrl-C (exit 0) or --count refreshes. */
export async function watchServices(client: DaemonClient, io: CliIO, opts: WatchOptions): Promise<number> {
  const inPlace = io.stdout.isTTY === true && !opts.json;
  let stopped = false;
  let wake: (() => void) | null = null;
  const onSigint = (): void => {
    stopped = true;
    wake?.();
  };
  process.on('SIGINT', onSigint);
  if (inPlace) io.stdout.write(HIDE_CURSOR);
  try {
    for (let i = 0; !stopped && (opts.count === null || i < opts.count); i++) {
      if (i > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, opts.intervalMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
        if (stopped) break;
      }
      const { list, conflicts = [] } = await client.listServicesReport();
      const table = (list.length === 0 ? 'no services\n' : servicesTable(list)) + conflictsText(conflicts);
      const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      if (opts.json) {
        io.stdout.write(`${JSON.stringify(list)}\n`);
      } else if (inPlace) {
        // Lines cut to the terminal width: a wrapped line would push the table down at each refresh.
        const width = io.stdout.columns ?? 0;
        const fit = (l: string): string => (width > 0 && l.length > width ? l.slice(0, width) : l);
        const title = `adi daemon services · ${stamp} · every ${opts.intervalMs / 1000}s · Ctrl-C to quit`;
        io.stdout.write(CLEAR_HOME + [title, '', ...table.trimEnd().split('\n')].map(fit).join('\n') + '\n');
      } else {
        io.stdout.write(`${i > 0 ? '\n' : ''}# ${stamp}\n${table}`);
      }
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    if (inPlace) io.stdout.write(SHOW_CURSOR);
  }
}
