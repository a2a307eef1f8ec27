// The user's services file (`$XDG_CONFIG_HOME/adi/services.toml`): one table per service, e.g.
//
//   [hive]
//   command = "/usr/local/bin/hive"
//   args = ["serve"]
//   auto_start = true
//   liveness = { tcp = 7000, interval_secs = 5 }
//
// A bad entry is reported with file, service and field and skipped; the others load. A syntax error
// loads nothing from the file (and says where), and a missing file simply defines no services.

import fs from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { AdiError } from '../../core/errors.js';
import { checkName } from '../../core/paths.js';
import { describe, formatFieldError, isPlainObject, validateServiceConfig } from '../../protocol/config-schema.js';
import type { InvalidDefinition, ServiceDefinition, ServiceSource, SourceResult } from '../registry.js';

/** A services file larger than this is refused: it is hand-written configuration, not data. */
export const MAX_SERVICES_FILE_BYTES = 4 * 1024 * 1024;

export class FileSource implements ServiceSource {
  readonly kind = 'file' as const;

  constructor(readonly file: string) {}

  async load(): Promise<SourceResult> {
    let text: string;
    try {
      const handle = await fs.open(this.file, 'r');
      try {
        const stat = await handle.stat();
        if (!stat.isFile()) return fail(`${this.file}: not a regular file`);
        if (stat.size > MAX_SERVICES_FILE_BYTES)
          return fail(
            `${this.file}: ${stat.size} bytes is more than the ${MAX_SERVICES_FILE_BYTES} allowed for a services file`,
          );
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { definitions: [], errors: [] };
      return fail(`${this.file}: cannot read: ${code ?? (err as Error).message}`);
    }
    return parseServicesToml(text, this.file);
  }
}

function fail(message: string): SourceResult {
  return { definitions: [], errors: [message], failed: true };
}

/** Parse and validate a services file's text; `file` names it in messages. */
export function parseServicesToml(text: string, file: string): SourceResult {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      // TomlError's message carries a code excerpt over several lines; keep its first line.
      const why = err.message.split('\n')[0] ?? 'syntax error';
      return fail(
        `${file}:${err.line}:${err.column}: TOML syntax error: ${why}; nothing in this file was applied (running services keep their last valid definitions): fix it, then run adi daemon reload`,
      );
    }
    return fail(`${file}: cannot parse: ${err instanceof Error ? err.message : String(err)}`);
  }

  const definitions: ServiceDefinition[] = [];
  const errors: string[] = [];
  const invalid: InvalidDefinition[] = [];
  for (const [name, table] of Object.entries(doc)) {
    try {
      checkName('service', name);
    } catch (err) {
      errors.push(`${file}: service ${JSON.stringify(name)}: ${err instanceof AdiError ? err.message : String(err)}`);
      continue;
    }
    if (!isPlainObject(table)) {
      invalid.push({
        name,
        origin: file,
        errors: [`${file}: service "${name}": expected a table [${name}] of service fields, got ${describe(table)}`],
      });
      continue;
    }
    const result = validateServiceConfig(table, { allowAutoStart: true });
    if (result.config === null) {
      invalid.push({
        name,
        origin: file,
        errors: result.errors.map((e) => `${file}: service "${name}": ${formatFieldError(e)}`),
      });
      continue;
    }
    definitions.push({ name, source: 'file', config: result.config, auto_start: result.autoStart, origin: file });
  }
  for (const bad of invalid) errors.push(...bad.errors);
  return { definitions, errors, invalid };
}
