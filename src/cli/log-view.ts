// How `adi daemon logs` shows lines to people: --since and --stderr filters, several services merged
// by time with a service prefix (coloured only for a terminal without NO_COLOR), and control characters
// made visible, so a service cannot move the reader's cursor, retitle their terminal or hide text.

import type { LogEntry, RawLogBatch } from '../client/client.js';
import { AdiError } from '../core/errors.js';

// C0 controls but TAB, DEL, and C1 controls (which some terminals take as CSI, OSC, ...): matching
// control characters is the point here.
/* oxlint-disable no-control-regex */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
/* oxlint-enable no-control-regex */

function visible(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x20) return `^${String.fromCharCode(code + 64)}`;
  if (code === 0x7f) return '^?';
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * A line's text for a terminal: UTF-8 decoded (invalid bytes become U+FFFD), a final '\r' (CRLF output)
 * dropped, and every other control character shown in caret notation (ESC as ^[, NUL as ^@).
 */
export function safeText(text: Buffer): string {
  let s = text.toString('utf8');
  if (s.endsWith('\r')) s = s.slice(0, -1);
  return CONTROL.test(s) ? s.replace(CONTROLS, visible) : s;
}

/** Cached: the lines of one chunk share their time. */
let lastTime = NaN;
let lastIso = '';
function iso(time: number): string {
  if (time !== lastTime) {
    lastTime = time;
    lastIso = new Date(time).toISOString();
  }
  return lastIso;
}

/** The prefix people see before the text: "<time> " (stderr lines and notes marked [err], [sys]). */
export function entryPrefix(e: LogEntry): string {
  return e.stream === 'out' ? `${iso(e.time)} ` : `${iso(e.time)} [${e.stream}] `;
}

/** "<time> <text>" with the text made safe for a terminal. */
export function displayEntry(e: LogEntry): string {
  return entryPrefix(e) + safeText(e.text);
}

const STREAM_TAGS = ['', '[err] ', '[sys] '];
const NEWLINE = Buffer.from('\n');

/**
 * A whole batch for people, `lead` before every line: decoded and made safe at once rather than line by
 * line (a '\n' never belongs to a multi-byte character, so the lines decode the same either way). With
 * `raw`, the bytes as they are.
 */
export function formatBatch(batch: RawLogBatch, lead: string, raw: boolean): string | Buffer {
  const { data, runs } = batch;
  if (raw) {
    const parts: Buffer[] = [];
    let at = 0;
    for (let i = 0; i + 2 < runs.length; i += 3) {
      const prefix = Buffer.from(`${lead}${iso(runs[i] as number)} ${STREAM_TAGS[runs[i + 1] as number] ?? ''}`);
      for (let k = 0; k < (runs[i + 2] as number); k++) {
        const nl = data.indexOf(10, at);
        parts.push(prefix, data.subarray(at, nl), NEWLINE);
        at = nl + 1;
      }
    }
    return Buffer.concat(parts);
  }
  const lines = data.toString('utf8').split('\n');
  const unsafe = lines.some((l) => CONTROL.test(l));
  let out = '';
  let k = 0;
  for (let i = 0; i + 2 < runs.length; i += 3) {
    const prefix = `${lead}${iso(runs[i] as number)} ${STREAM_TAGS[runs[i + 1] as number] ?? ''}`;
    for (const end = k + (runs[i + 2] as number); k < end; k++) {
      let line = lines[k] as string;
      if (unsafe) {
        if (line.endsWith('\r')) line = line.slice(0, -1);
        line = line.replace(CONTROLS, visible);
      }
      out += `${prefix}${line}\n`;
    }
  }
  return out;
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
    for (const [, n, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)([smhd])/g))
      ms += Number(n) * (UNIT_MS[unit as string] as number);
    return now - ms;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const at = Date.parse(trimmed);
    if (Number.isFinite(at)) return at;
  }
  throw new AdiError(
    'BAD_ARGUMENT',
    `--since takes a duration like 30s, 10m, 2h or 1d, or a time like 2024-05-01T12:00:00Z; got '${text}'.`,
  );
}

export interface LineFilter {
  /** Earliest time shown (ms), or null. */
  since: number | null;
  /** Only stderr lines. */
  stderrOnly: boolean;
}

export function keepEntry(e: LogEntry, filter: LineFilter): boolean {
  if (filter.stderrOnly && e.stream !== 'err') return false;
  return filter.since === null || e.time >= filter.since;
}

/**
 * The last `n` entries the way the daemon's tail counts them: `n` of the services' own lines, with the
 * supervisor's notes that fall between them.
 */
export function lastLines<T>(items: readonly T[], n: number, entry: (item: T) => LogEntry): T[] {
  if (n <= 0) return [];
  let own = 0;
  let start = items.length;
  while (start > 0 && own < n) {
    start--;
    if (entry(items[start] as T).stream !== 'sys') own++;
  }
  return items.slice(start);
}

export interface SourcedEntry {
  service: string;
  entry: LogEntry;
}

/** Merge per-service tails (each in order) into one list ordered by time; equal times keep the services' order. */
export function mergeByTime(tails: ReadonlyArray<{ service: string; entries: readonly LogEntry[] }>): SourcedEntry[] {
  const all: SourcedEntry[] = [];
  for (const { service, entries } of tails) for (const entry of entries) all.push({ service, entry });
  // Array.prototype.sort is stable: equal times keep the order they were pushed in.
  return all.sort((a, b) => a.entry.time - b.entry.time);
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

export function servicePrefix(service: string, width: number, colour: boolean): string {
  const name = service.padEnd(width);
  return colour ? `\x1b[${colourFor(service)}m${name} |\x1b[0m ` : `${name} | `;
}
