// How `adi daemon logs` shows lines to people (issue 8): --since and --stderr filters, several services
// merged by time with a service prefix, coloured only for a terminal without NO_COLOR.

import { AdiError } from '../errors.js';
import { parseLogLine } from '../logs/log-line.js';

/** A stored line is "<time> <out|err|sys> <text>"; people see "<time> <text>" (stderr lines marked). */
export function displayLine(line: string): string {
  const m = /^(\S+) (out|err|sys) (.*)$/s.exec(line);
  if (!m) return line;
  const [, time, stream, text] = m;
  return stream === 'out' ? `${time} ${text}` : `${time} [${stream}] ${text}`;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--since`: a duration back from now (30s, 10m, 2h, 1d, 1h30m) or a date/time (ISO 8601, e.g.
 * 2024-05-01T12:00:00Z or 2024-05-01). Returns the earliest time shown, in ms.
 */
export function parseSince(text: string, now = Date.now()): number {
  const trimmed = text.trim();
  if (/^(\d+(\.\d+)?[smhd])+$/.test(trimmed)) {
    let ms = 0;
    for (const [, n, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) ms += Number(n) * (UNIT_MS[unit as string] as number);
    return now - ms;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const at = Date.parse(trimmed);
    if (Number.isFinite(at)) return at;
  }
  throw new AdiError('BAD_ARGUMENT', `--since takes a duration like 30s, 10m, 2h or 1d, or a time like 2024-05-01T12:00:00Z; got '${text}'.`);
}

export interface LineFilter {
  /** Earliest time shown (ms), or null. */
  since: number | null;
  /** Only stderr lines. */
  stderrOnly: boolean;
}

/** Whether a stored line passes the filter. A line not in the log format passes only without filters. */
export function keepLine(line: string, filter: LineFilter): boolean {
  if (filter.since === null && !filter.stderrOnly) return true;
  const parsed = parseLogLine(line);
  if (parsed === null) return false;
  if (filter.stderrOnly && parsed.stream !== 'err') return false;
  return filter.since === null || Date.parse(parsed.time) >= filter.since;
}

/** Whether a stored line is one of the supervisor's own notes (not counted by -n, as in the daemon's tail). */
export function isNote(line: string): boolean {
  return /^\S+ sys /.test(line);
}

/**
 * The last `n` lines the way the daemon's tail counts them: `n` of the services' own lines, with the
 * supervisor's notes that fall between them.
 */
export function lastLines<T>(items: readonly T[], n: number, line: (item: T) => string): T[] {
  if (n <= 0) return [];
  let own = 0;
  let start = items.length;
  while (start > 0 && own < n) {
    start--;
    if (!isNote(line(items[start] as T))) own++;
  }
  return items.slice(start);
}

export interface SourcedLine {
  service: string;
  line: string;
}

/**
 * Merge per-service tails into one list ordered by time. Each input is already in order; equal times
 * keep the services' order; the ISO times compare as strings. A line without a time sorts as the line
 * before it in its own service.
 */
export function mergeByTime(tails: ReadonlyArray<{ service: string; lines: readonly string[] }>): SourcedLine[] {
  const keyed: Array<{ key: string; service: string; line: string; order: number }> = [];
  let order = 0;
  for (const { service, lines } of tails) {
    let last = '';
    for (const line of lines) {
      const time = parseLogLine(line)?.time ?? last;
      last = time;
      keyed.push({ key: time, service, line, order: order++ });
    }
  }
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.order - b.order));
  return keyed.map(({ service, line }) => ({ service, line }));
}

/** Colours for service prefixes: the six plain ANSI ones every terminal has, picked by the name. */
const COLOURS = [36, 33, 32, 35, 34, 31];

export function colourFor(service: string): number {
  let h = 0;
  for (let i = 0; i < service.length; i++) h = (h * 31 + service.charCodeAt(i)) >>> 0;
  return COLOURS[h % COLOURS.length] as number;
}

/** Colour only for a terminal, and never when NO_COLOR is set to anything (no-color.org). */
export function useColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && (env['NO_COLOR'] === undefined || env['NO_COLOR'] === '') && env['TERM'] !== 'dumb';
}

export function prefixed(service: string, width: number, text: string, colour: boolean): string {
  const name = service.padEnd(width);
  return colour ? `\x1b[${colourFor(service)}m${name} |\x1b[0m ${text}` : `${name} | ${text}`;
}
