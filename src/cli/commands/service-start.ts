// `adi daemon start NAME [options] [-- COMMAND ARGS...]`: start a known service, or an ad-hoc one.

import { AdiError } from '../../core/errors.js';
import { checkName } from '../../core/paths.js';
import { formatFieldError, validateServiceConfig } from '../../protocol/config-schema.js';
import type { ServiceConfig } from '../../protocol/types.js';
import type { CliIO } from '../command.js';
import { connectedClient } from '../daemon-client.js';

/** The option that sets each config field an ad-hoc service takes from the command line. */
const OPTION_OF: Partial<Record<string, string>> = {
  env: '--env',
  working_dir: '--cwd',
  restart_on_failure: '--no-restart',
  max_restarts: '--max-restarts',
  stop_timeout: '--stop-timeout',
  command: 'the command after --',
  args: 'the arguments after --',
};

function positiveNumber(flag: string, value: string, integer: boolean): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw new AdiError(
      'BAD_ARGUMENT',
      `${flag} takes a ${integer ? 'whole ' : ''}number of 0 or more, got '${value}'.`,
    );
  }
  return n;
}

/** What `adi daemon start NAME` was given (parsed by the spec in daemon-start.ts). */
export interface StartArgs {
  name: string;
  values: { env?: string[]; cwd?: string; 'no-restart'?: boolean; 'max-restarts'?: string; 'stop-timeout'?: string };
  /** The words after `--`, or null without `--`. */
  commandLine: string[] | null;
}

export async function startService({ name: typed, values, commandLine }: StartArgs, io: CliIO): Promise<number> {
  const name = checkName('service', typed);
  const hasOptions =
    values.env !== undefined ||
    values.cwd !== undefined ||
    values['no-restart'] !== undefined ||
    values['max-restarts'] !== undefined ||
    values['stop-timeout'] !== undefined;
  let config: ServiceConfig | null = null;
  if (commandLine !== null) {
    const [command, ...args] = commandLine;
    if (command === undefined || command === '') {
      throw new AdiError(
        'BAD_ARGUMENT',
        `Nothing after '--': give the command to run, e.g. 'adi daemon start ${name} -- /bin/sleep 1000'.`,
      );
    }
    config = { command, args };
    if (values.env) {
      const env: Record<string, string> = {};
      for (const pair of values.env) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new AdiError('BAD_ARGUMENT', `--env takes KEY=VALUE, got '${pair}'.`);
        env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      config.env = env;
    }
    if (values.cwd !== undefined) config.working_dir = values.cwd;
    if (values['no-restart']) config.restart_on_failure = false;
    if (values['max-restarts'] !== undefined)
      config.max_restarts = positiveNumber('--max-restarts', values['max-restarts'], true);
    if (values['stop-timeout'] !== undefined)
      config.stop_timeout = positiveNumber('--stop-timeout', values['stop-timeout'], false);
    // Checked here with the daemon's own schema, so that an error names the option the user typed.
    const checked = validateServiceConfig(config);
    if (checked.config === null) {
      throw new AdiError(
        'BAD_ARGUMENT',
        checked.errors
          .map((e) => {
            const top = e.field.split('.')[0] ?? e.field;
            const flag = OPTION_OF[top];
            return flag === undefined ? formatFieldError(e) : `${flag}: ${e.message}`;
          })
          .join('; '),
      );
    }
  } else if (hasOptions) {
    throw new AdiError(
      'BAD_ARGUMENT',
      `Options like --env and --cwd describe an ad-hoc service: add '-- COMMAND [ARGS...]'.`,
    );
  }
  const client = await connectedClient(io);
  try {
    const { service, configErrors: errors } = await client.startService(name, config);
    if (errors.length > 0) {
      io.stderr.write(
        `${name} runs its last valid definition: its definition now is invalid (fix it, then run 'adi daemon reload'):\n${errors.map((e) => `  ${e}`).join('\n')}\n`,
      );
    }
    io.stdout.write(`started ${name}${service.pid != null ? ` (pid ${service.pid})` : ''}\n`);
    return 0;
  } finally {
    client.close();
  }
}
