// The shape of one CLI command module. Each `adi ...` subcommand is a file in src/cli/commands/ that
// exports `command: Command`; src/cli/main.ts maps the words typed to a module and loads only that one.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AdiError } from '../core/errors.js';

export interface CliIO {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

export interface Command {
  /** The words that select it, e.g. "daemon start". */
  readonly name: string;
  /** One line for `--help` listings. */
  readonly summary: string;
  /** Full usage text shown by `adi <name> --help`. */
  readonly usage: string;
  /** Returns the process exit code. Throw AdiError for failures; main.ts prints them with a hint. */
  run(argv: string[], io: CliIO): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

type Value<T> = T extends { type: 'boolean' } ? boolean : string;
export interface ParsedArgs<O extends Options> {
  values: { [K in keyof O]?: O[K] extends { multiple: true } ? Value<O[K]>[] : Value<O[K]> };
  positionals: string[];
}

/** node:util parseArgs (strict), with errors turned into BAD_ARGUMENT that point at --help. */
export function parseCommandArgs<O extends Options>(commandName: string, argv: string[], options: O, allowPositionals = true): ParsedArgs<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true }) as unknown as ParsedArgs<O>;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new AdiError('BAD_ARGUMENT', `${message}. See 'adi ${commandName} --help'.`);
  }
}
