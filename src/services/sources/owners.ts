// Which plugin owns each plugin-defined service name, kept across daemon restarts in the data dir
// (`service-owners.json`, 0600). Between plugins, the owner of a contested name is the plugin that
// held it before (registry.ts); without this record a restarted daemon would know no owner and give
// a name two plugins define to neither. Only plugins are recorded: the services file owns its names
// anyway, and an ad-hoc service lasts as long as it runs.

import fs from 'node:fs';
import path from 'node:path';
import { NAME_PATTERN } from '../../core/paths.js';
import type { Logger } from '../../core/logger.js';
import { writeFileAtomic } from '../../core/files.js';
import type { ServiceDefinition } from '../registry.js';

export const OWNERS_FILE = 'service-owners.json';

/** A larger record is not ours (a few hundred plugins fit in a few KiB): it is ignored. */
export const MAX_OWNERS_FILE_BYTES = 1024 * 1024;

export class OwnerRecord {
  private owners = new Map<string, string>();
  private written = '';
  readonly file: string;

  constructor(
    dataDir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(dataDir, OWNERS_FILE);
  }

  /** Read the record (a missing one is empty; an unreadable one is reported and treated as empty). */
  load(): void {
    this.owners = new Map();
    let text: string;
    try {
      if (fs.statSync(this.file).size > MAX_OWNERS_FILE_BYTES)
        throw new Error(`larger than ${MAX_OWNERS_FILE_BYTES} bytes`);
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn(
          `services: ${this.file}: ${(err as Error).message}; no plugin owns a contested name until the next load records one`,
        );
      return;
    }
    this.written = text;
    try {
      const doc = JSON.parse(text) as { owners?: unknown };
      if (doc.owners === null || typeof doc.owners !== 'object' || Array.isArray(doc.owners))
        throw new Error('no "owners" map');
      for (const [name, origin] of Object.entries(doc.owners as Record<string, unknown>)) {
        if (NAME_PATTERN.test(name) && typeof origin === 'string' && origin.length <= 200)
          this.owners.set(name, origin);
      }
    } catch (err) {
      this.log.warn(
        `services: ${this.file}: cannot parse (${(err as Error).message}); it is rewritten at the next load`,
      );
    }
  }

  /** The recorded owner of `name` (the origin of its definition), if a plugin owned it. */
  owner(name: string): string | undefined {
    return this.owners.get(name);
  }

  /** Record the plugin owners of the loaded definitions (written only when something changed). */
  update(definitions: Iterable<ServiceDefinition>): void {
    const next = new Map<string, string>();
    for (const def of definitions) if (def.source === 'plugin') next.set(def.name, def.origin);
    const sorted = Object.fromEntries([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const text = `${JSON.stringify({ version: 1, owners: sorted }, null, 1)}\n`;
    this.owners = next;
    if (text === this.written) return;
    try {
      writeFileAtomic(this.file, text, 0o600);
      this.written = text;
    } catch (err) {
      this.log.warn(`services: cannot write ${this.file}: ${(err as Error).message}`);
    }
  }
}
