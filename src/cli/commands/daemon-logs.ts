import { AdiError } from '../../errors.js';
import { checkName } from '../../paths.js';
import { parseCommandArgs, type Command } from '../command.js';
import { connectedClient } from '../daemon-client.js';

/** A stored line is "<time> <out|err|sys> <text>"; people see "<time> <text>" (stderr lines marked). */
export function displayLine(line: string): string {
  const m = /^(\S+) (out|err|sys) (.*)$/s.exec(line);
  if (!m) return line;
  const [, time, stream, text] = m;
  return stream === 'out' ? `${time} ${text}` : `${time} [${stream}] ${text}`;
}

export const command: Command = {
  name: 'daemon logs',
  summary: "Show a service's log",
  usage: `Usage: adi daemon logs NAME [-n N] [-f]

Prints the last N lines (default 100) of the service's stdout and stderr, each prefixed by its
timestamp; stderr lines are marked [err], the supervisor's own notes [sys].
  -n, --lines N   How many lines
  -f, --follow    Keep printing new lines as they are written (Ctrl-C to stop)`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('daemon logs', argv, {
      lines: { type: 'string', short: 'n' },
      follow: { type: 'boolean', short: 'f' },
    });
    if (positionals.length !== 1) throw new AdiError('BAD_ARGUMENT', `Expected one service name, got ${positionals.length}. See 'adi daemon logs --help'.`);
    const name = checkName('service', positionals[0]);
    const lines = values.lines === undefined ? (values.follow ? 10 : 100) : Number(values.lines);
    if (!Number.isInteger(lines) || lines < 0) throw new AdiError('BAD_ARGUMENT', `-n takes a whole number of 0 or more, got '${values.lines}'.`);
    const client = await connectedClient(io);
    try {
      if (values.follow) {
        for await (const line of client.followServiceLogs(name, { lines })) io.stdout.write(`${displayLine(line)}\n`);
      } else {
        const out = (await client.serviceLogs(name, { lines })).map(displayLine);
        if (out.length > 0) io.stdout.write(`${out.join('\n')}\n`);
      }
      return 0;
    } finally {
      client.close();
    }
  },
};
