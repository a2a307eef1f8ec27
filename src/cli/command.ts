// The shape of one CLI command. Each `adi ...` subcommand is a file in src/cli/commands/ that exports
// `command = defineCommand(spec, run)`: the spec declares its arguments and options once, and parsing,
// `--help` and shell completion (src/cli/complete.ts) are all made from it. src/cli/table.ts lists the
// commands with their summaries and lazy loaders, so `adi daemon status` loads only its own module.

import { parseArgs } from 'node:util';
import { AdiError } from '../core/errors.js';

export interface CliIO {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

export interface OptionSpec {
  readonly type: 'boolean' | 'string';
  readonly short?: string;
  readonly multiple?: boolean;
  /** The value's name in help, for string options: N, DIR, K=V. */
  readonly value?: string;
  readonly help: string;
  /** What completes the value: a directory. Other values complete to nothing. */
  readonly complete?: 'dir';
  /** Accepted but not shown in help or completion (for adi's own use). */
  readonly hidden?: boolean;
}

export interface ArgSpec {
  /** As shown in help: NAME, FOLDER. */
  readonly name: string;
  readonly optional?: boolean;
  /** Takes any number (at least one unless optional). Only the last argument can be. */
  readonly variadic?: boolean;
  /** A service name: completion asks the daemon for them. */
  readonly service?: boolean;
  /** The values it takes, for completion. */
  readonly choices?: readonly string[];
  /** Completes to file names. */
  readonly complete?: 'file';
}

export interface CommandSpec {
  readonly args: readonly ArgSpec[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** What follows `--`, kept verbatim as a command line of its own (shown in help), e.g. 'COMMAND [ARGS...]'. */
  readonly commandLine?: string;
  /** Shown after the generated usage line, before the options. */
  readonly description: string;
  /** Shown after the options. */
  readonly notes?: string;
  /** Replaces the generated usage line (a command meant to be run as root, say). */
  readonly usage?: string;
}

type Value<O extends OptionSpec> = O extends { type: 'boolean' } ? boolean : string;
export type Values<Opts extends Record<string, OptionSpec>> = {
  [K in keyof Opts]?: Opts[K] extends { multiple: true } ? Value<Opts[K]>[] : Value<Opts[K]>;
};

export interface Parsed<Opts extends Record<string, OptionSpec>> {
  values: Values<Opts>;
  positionals: string[];
  /** The words after `--` for a command that takes a command line; null when there was no `--`. */
  commandLine: string[] | null;
}

export interface Command {
  /** The words that select it (its key in table.ts). */
  readonly name: string;
  readonly spec: CommandSpec;
  /** Parses argv by the spec, then runs. Returns the exit code; throws AdiError for failures (main.ts prints them). */
  run(argv: string[], io: CliIO): Promise<number>;
}

/** A command's spec with its words and what it does with the parsed arguments. */
export interface Definition<O extends Record<string, OptionSpec>> extends CommandSpec {
  /** The words that select it, e.g. "daemon start" (the key of its entry in table.ts). */
  readonly name: string;
  readonly options: O;
  run(args: Parsed<O>, io: CliIO): Promise<number>;
}

export function defineCommand<const O extends Record<string, OptionSpec>>(def: Definition<O>): Command {
  return { name: def.name, spec: def, run: (argv, io) => def.run(parseCommand(def.name, def, argv), io) };
}

/**
 * node:util parseArgs (strict; options before or after the arguments), with the argument count
 * checked against the spec and errors turned into BAD_ARGUMENT that point at --help.
 */
export function parseCommand<O extends Record<string, OptionSpec>>(
  name: string,
  spec: CommandSpec & { options: O },
  argv: string[],
): Parsed<O> {
  let args = argv;
  let commandLine: string[] | null = null;
  const split = spec.commandLine === undefined ? -1 : argv.indexOf('--');
  if (split >= 0) {
    args = argv.slice(0, split);
    commandLine = argv.slice(split + 1);
  }
  const options: Record<string, { type: 'boolean' | 'string'; short?: string; multiple?: boolean }> = {};
  for (const [key, o] of Object.entries(spec.options)) {
    options[key] = {
      type: o.type,
      ...(o.short === undefined ? {} : { short: o.short }),
      ...(o.multiple === true ? { multiple: true } : {}),
    };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new AdiError('BAD_ARGUMENT', `${message}. See 'adi ${name} --help'.`);
  }
  const { positionals } = parsed;
  const last = spec.args[spec.args.length - 1];
  const max = last?.variadic === true ? Infinity : spec.args.length;
  if (positionals.length > max) {
    const extra = positionals[max] as string;
    const takes = max === 0 ? 'takes no arguments' : `takes ${spec.args.map((a) => a.name).join(' ')}`;
    throw new AdiError(
      'BAD_ARGUMENT',
      `Unexpected argument '${extra}': 'adi ${name}' ${takes}. See 'adi ${name} --help'.`,
    );
  }
  positionals.forEach((value, i) => {
    const arg = spec.args[Math.min(i, spec.args.length - 1)];
    if (arg?.choices !== undefined && !arg.choices.includes(value)) {
      const choices = `${arg.choices.slice(0, -1).join(', ')} or ${arg.choices[arg.choices.length - 1] ?? ''}`;
      throw new AdiError('BAD_ARGUMENT', `${arg.name} is one of ${choices}, not '${value}'. See 'adi ${name} --help'.`);
    }
  });
  const missing = spec.args.find((a, i) => a.optional !== true && positionals.length <= i);
  if (missing !== undefined) throw new AdiError('BAD_ARGUMENT', `Missing ${missing.name}. See 'adi ${name} --help'.`);
  return { values: parsed.values as Values<O>, positionals, commandLine };
}

/** `adi <name> --help`: the usage line, the description, then each option with its help. */
export function helpText(name: string, spec: CommandSpec): string {
  const args = spec.args.map((a) => {
    const word = a.variadic === true ? `${a.name}...` : a.name;
    return a.optional === true ? `[${word}]` : word;
  });
  const visible = Object.entries(spec.options).filter(([, o]) => o.hidden !== true);
  const usage =
    spec.usage ??
    [
      `adi ${name}`,
      ...args,
      ...(visible.length > 0 ? ['[options]'] : []),
      ...(spec.commandLine !== undefined ? [`[-- ${spec.commandLine}]`] : []),
    ].join(' ');
  const lines = [`Usage: ${usage}`];
  if (spec.description !== '') lines.push('', spec.description);
  const flags = visible.map(([key, o]) => {
    const long = `--${key}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return o.short === undefined ? long : `-${o.short}, ${long}`;
  });
  const width = Math.min(Math.max(10, ...flags.map((f) => f.length)), 24) + 2;
  lines.push('', 'Options:');
  visible.forEach(([, o], i) => {
    const flag = flags[i] as string;
    const help = wrap(o.help + (o.multiple === true ? ' (repeatable)' : ''), HELP_WIDTH - width - 2);
    if (flag.length > width - 2) lines.push(`  ${flag}`, ...help.map((h) => `${' '.repeat(width + 2)}${h}`));
    else lines.push(...help.map((h, j) => `  ${(j === 0 ? flag : '').padEnd(width)}${h}`));
  });
  lines.push(`  ${'-h, --help'.padEnd(width)}Show this help`);
  if (spec.notes !== undefined) lines.push('', spec.notes);
  return `${lines.join('\n')}\n`;
}

const HELP_WIDTH = 100;

/** Words of one paragraph in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}
