// The ServiceConfig and HealthCheck tables of docs/protocol.md are rendered from the schema
// (protocol/config-schema.ts) and must be exactly what the page has, so a limit or default changed in
// one place shows up in the other or fails here. On failure the message holds the table to paste.
// README's services.toml example is checked too: it is valid, and each "default N" it states is the schema's.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  AUTO_START,
  HEALTH_CHECK_SCHEMA,
  SERVICE_CONFIG_SCHEMA,
  type FieldSchema,
  type PluginRule,
  type PluginRules,
  type SchemaOf,
} from '../../src/protocol/config-schema.js';
import type { ServiceConfig } from '../../src/protocol/types.js';
import { DEFAULT_LOG_OPTIONS } from '../../src/logs/service-log.js';
import { PLUGIN_RULES } from '../../src/services/config.js';
import { parseServicesToml } from '../../src/services/sources/file-source.js';
import { ROOT } from '../helpers/env.js';

const DOC = fs.readFileSync(path.join(ROOT, 'docs', 'protocol.md'), 'utf8');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const SECURITY = fs.readFileSync(path.join(ROOT, 'docs', 'security.md'), 'utf8');

const UNITS: [number, string][] = [
  [2 ** 40, 'TiB'],
  [2 ** 30, 'GiB'],
  [2 ** 20, 'MiB'],
  [2 ** 10, 'KiB'],
];

function amount(n: number, spec: FieldSchema): string {
  if ('unit' in spec && spec.unit === 'bytes') {
    for (const [size, unit] of UNITS) if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return String(n);
}

function typeOf(spec: FieldSchema): string {
  const base = {
    boolean: 'bool',
    integer: 'uint',
    number: 'unit' in spec && spec.unit === 's' ? 'number (s)' : 'number',
    string: 'string',
    url: 'string',
    tcp: 'uint \\| string',
    strings: '[string]',
    env: 'map string → string',
    health: 'HealthCheck',
  }[spec.type];
  return spec.nullable === true ? `${base} \\| nil` : base;
}

function defaultOf(spec: FieldSchema, rule: PluginRule | undefined): string {
  let text: string;
  if (spec.defaultDoc !== undefined) text = spec.defaultDoc;
  else if (spec.type === 'strings') text = spec.minItems > 0 ? '—' : '`[]`';
  else if (spec.type === 'env') text = '`{}`';
  else if (spec.type === 'health') text = 'nil';
  else if (!('default' in spec) || spec.default === undefined) text = '—';
  else text = spec.default === null ? 'nil' : `\`${String(spec.default)}\``;
  if (typeof rule === 'object' && 'default' in rule) {
    const plugin = amount(rule.default, spec);
    if (text.replace(/`/g, '') !== plugin) text += ` (a plugin's service: ${plugin})`;
  }
  return text;
}

function limitsOf(spec: FieldSchema, rule: PluginRule | undefined): string {
  let text: string;
  switch (spec.type) {
    case 'integer':
    case 'number':
      text = `${amount(spec.min, spec)} to ${amount(spec.max, spec)}`;
      break;
    case 'string':
    case 'url':
      text = `at most ${spec.maxLength} characters`;
      break;
    case 'tcp':
      text = `a port from 1 to 65535, or at most ${spec.maxLength} characters`;
      break;
    case 'strings':
      text = `${spec.minItems > 0 ? `${spec.minItems} to ${spec.maxItems}` : `at most ${spec.maxItems}`} items, each at most ${spec.maxLength} characters`;
      break;
    case 'env':
      text = `at most ${spec.maxEntries} variables, each value at most ${spec.maxLength} characters`;
      break;
    case 'boolean':
      text = '';
      break;
    case 'health':
      text = 'see HealthCheck';
      break;
  }
  if (typeof rule === 'object' && 'max' in rule) text += `; a plugin's manifest: at most ${amount(rule.max, spec)}`;
  if (typeof rule === 'object' && 'refused' in rule) text += `${text === '' ? '' : '; '}not in a plugin's manifest`;
  return text === '' ? '—' : text;
}

function render(schema: Readonly<Record<string, FieldSchema>>, rules?: Partial<PluginRules>): string {
  const rows = Object.entries(schema).map(([field, spec]) => {
    const rule = rules?.[field as keyof PluginRules];
    return `| \`${field}\` | ${typeOf(spec)} | ${defaultOf(spec, rule)} | ${limitsOf(spec, rule)} | ${spec.doc} |`;
  });
  return ['| field | type | default | limits | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/** The table (its lines starting with `|`) of the section under `heading`. */
function docTable(heading: string): string {
  const lines = DOC.split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `docs/protocol.md has a heading ${heading}`);
  const end = lines.findIndex((l, i) => i > start && /^#{2,3} /.test(l));
  return lines
    .slice(start + 1, end < 0 ? undefined : end)
    .filter((l) => l.startsWith('|'))
    .join('\n');
}

describe('the schema and the ServiceConfig interface agree, or the tests do not compile', () => {
  test('a missing field, an extra one, a kind the type does not allow, or a wrong nullability is an error', () => {
    type Schema = SchemaOf<ServiceConfig>;
    const S = SERVICE_CONFIG_SCHEMA;
    const { memory_max: _memory, ...missing } = S;
    const { nullable: _nullable, ...notNullable } = S.pids_max;
    // @ts-expect-error memory_max is a field of ServiceConfig
    const withoutOne: Schema = missing;
    // @ts-expect-error colour is not
    const withExtra: Schema = { ...S, colour: S.privileged };
    // @ts-expect-error max_restarts is a number, not a boolean
    const wrongKind: Schema = { ...S, max_restarts: S.privileged };
    // @ts-expect-error pids_max may be nil, so its schema says so
    const wrongNil: Schema = { ...S, pids_max: notNullable };
    const right: Schema = S;
    assert.ok([withoutOne, withExtra, wrongKind, wrongNil, right].every((s) => typeof s === 'object'));
  });
});

describe('docs/protocol.md and README against the config schema', () => {
  test('the ServiceConfig table is the schema, plugin limits included', () => {
    const expected = render(SERVICE_CONFIG_SCHEMA, PLUGIN_RULES);
    assert.equal(
      docTable('### ServiceConfig'),
      expected,
      `docs/protocol.md's ServiceConfig table should be:\n${expected}`,
    );
  });

  test("the log fields' documented defaults are the log module's", () => {
    const { log_max_bytes: bytes, log_max_files: files } = SERVICE_CONFIG_SCHEMA;
    assert.equal(bytes.defaultDoc, amount(DEFAULT_LOG_OPTIONS.maxBytes, bytes));
    assert.equal(files.defaultDoc, `\`${DEFAULT_LOG_OPTIONS.maxFiles}\``);
  });

  test("the plugin limits README and docs/security.md state in prose are PLUGIN_RULES'", () => {
    const { pids_max: pids, log_max_bytes: bytes, log_max_files: files } = PLUGIN_RULES;
    const { log_max_bytes: adminBytes, log_max_files: adminFiles } = SERVICE_CONFIG_SCHEMA;
    const mib = amount(bytes.max, adminBytes);
    const flat = (text: string): string => text.replace(/\s+/g, ' ');
    assert.ok(flat(README).includes(`(\`pids_max\`, default ${pids.default}) and at most ${mib} x ${files.max}`));
    const security = flat(SECURITY);
    assert.ok(security.includes(`\`pids_max\` (default ${pids.default}, at most ${pids.max} from a manifest)`));
    assert.ok(
      security.includes(
        `\`log_max_bytes\` at most ${mib} and \`log_max_files\` at most ${files.max} (the admin's \`services.toml\`: ${amount(adminBytes.max, adminBytes)} and ${adminFiles.max})`,
      ),
    );
  });

  test('the HealthCheck table is the schema', () => {
    const expected = render(HEALTH_CHECK_SCHEMA);
    assert.equal(docTable('### HealthCheck'), expected, `docs/protocol.md's HealthCheck table should be:\n${expected}`);
  });

  test("README's services.toml example is valid, and each default it states is the schema's", () => {
    const block = /```toml\n *(\[hive\][\s\S]*?)```/.exec(README)?.[1];
    assert.ok(block, 'README has the [hive] example');
    const text = block.replace(/^ {3}/gm, '');
    const parsed = parseServicesToml(text, 'README.md');
    assert.deepEqual(parsed.errors, []);
    assert.equal(parsed.definitions.length, 1);
    const stated = [...text.matchAll(/^(\w+) = .*# .*\bdefault (\S+)$/gm)];
    assert.ok(stated.length >= 3, 'the example states some defaults');
    const schema: Readonly<Record<string, FieldSchema>> = { ...SERVICE_CONFIG_SCHEMA, auto_start: AUTO_START };
    for (const [, field, value] of stated) {
      const spec = schema[field as string];
      assert.ok(spec !== undefined && 'default' in spec, `${field} is a field with a default`);
      assert.equal(value, String(spec.default), `README: the default of ${field}`);
    }
  });
});
