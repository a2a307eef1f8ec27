// The on-disk line format of a service log: `<ISO-8601 UTC time with ms> <out|err|sys> <text>`. Time and
// tag have a fixed shape and a single space after each, so a line parses without ambiguity whatever its
// text holds (including something that looks like another timestamp and tag).

export type LogLineStream = 'out' | 'err' | 'sys';

export interface ParsedLogLine {
  time: string;
  stream: LogLineStream;
  text: string;
}

/** `text` must not contain '\n' (the splitter guarantees it); it is written as is otherwise. */
export function formatLogLine(time: Date | string, stream: LogLineStream, text: string): string {
  return `${typeof time === 'string' ? time : time.toISOString()} ${stream} ${text}`;
}

// The 's' flag lets text hold a lone '\r' or any other control character the child wrote.
const LINE_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) (out|err|sys)(?: (.*))?$/s;

/** Parse one line (without its '\n'); null if it is not in the log format. */
export function parseLogLine(line: string): ParsedLogLine | null {
  const m = LINE_RE.exec(line);
  if (m === null) return null;
  return { time: m[1] as string, stream: m[2] as LogLineStream, text: m[3] ?? '' };
}
