// A plugin's manifest: its package.json, with the plugin
// fields under the key `adi`:
//
//   {
//     "name": "hello-plugin", "version": "1.0.0", "type": "module",
//     "bin": { "hello-plugin": "cli.js" },
//     "peerDependencies": { "adi-daemon": "*" },
//     "adi": { "service": {
//       "name": "hello", "command": "serve", "args": ["--port", "7000"],
//       "restart_on_failure": true, "max_restarts": 3,
//       "privileged_commands": ["/usr/bin/id -u"],
//       "liveness": { "tcp": 7000 }, "stop_timeout": 5, "log_max_bytes": 1048576
//     } }
//   }
//
// The service runs `<node> <plugin dir>/<bin> <command> [args...]` ("Plugin subcommand to
// run as service") in the plugin's folder. Every field is checked, and each error names the field
// (`adi.service.command`, `bin`, ...) and says why: the manifest comes from whoever wrote the plugin.

import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import { compilePattern } from '../system/patterns.js';
import { NAME_PATTERN } from '../core/paths.js';
import {
  describe,
  formatFieldError,
  isPlainObject,
  SERVICE_CONFIG_FIELDS,
  validateServiceConfig,
  type FieldError,
  type NormalizedConfig,
  type PluginRule,
} from '../protocol/config-schema.js';
import { PLUGIN_RULES } from '../services/config.js';

/** A package.json larger than this is not a manifest anyone wrote by hand. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

/** The service fields a manifest may give besides name, command, args and privileged_commands. */
const PASSED_FIELDS = SERVICE_CONFIG_FIELDS.filter((f) => {
  const rule: PluginRule = PLUGIN_RULES[f];
  return rule === 'same' || (typeof rule === 'object' && 'max' in rule);
});
const SERVICE_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'command',
  'args',
  'privileged_commands',
  ...PASSED_FIELDS,
]);
/** Fields a plugin may not set, with the reason shown. */
const REFUSED_FIELDS: Readonly<Record<string, string>> = {
  ...Object.fromEntries(
    SERVICE_CONFIG_FIELDS.flatMap((f) => {
      const rule: PluginRule = PLUGIN_RULES[f];
      return typeof rule === 'object' && 'refused' in rule ? [[f, rule.refused]] : [];
    }),
  ),
  auto_start: 'plugin services start on demand (adi daemon start NAME, or StartService from the plugin)',
};

export interface PluginService {
  name: string;
  /** The plugin subcommand, e.g. "serve". */
  command: string;
  args: string[];
  /** As written in the manifest; each one compiled (checked) when the manifest was read. */
  privileged_commands: string[];
  /** The manifest's other service fields (validated), to merge into the service's config. */
  fields: Record<string, unknown>;
}

export interface PluginManifest {
  /** The plugin's name: its package name. */
  name: string;
  version: string;
  /** The bin's path inside the plugin folder (normalised, relative), or null when it has none. */
  bin: string | null;
  service: PluginService | null;
  /** Whether it has dependencies of its own to install. */
  hasDependencies: boolean;
  /** `dependencies` and `optionalDependencies` as written (names and specs checked for display). */
  dependencies: Record<string, string>;
  optionalDependencies: Record<string, string>;
  /** Dependencies whose spec is not a plain registry version, range or tag (git, file, link, URL, alias...). */
  nonRegistry: NonRegistryDependency[];
  /** The manifest file, for messages. */
  file: string;
}

export interface NonRegistryDependency {
  field: 'dependencies' | 'optionalDependencies';
  name: string;
  spec: string;
}

export interface ManifestOptions {
  /** Resolves a pattern's command (compilePattern's default: the secure PATH). */
  resolve?: (cmd: string) => string;
  /** How to name the manifest in messages (default: its path), e.g. the folder it was installed from. */
  display?: string;
}

/**
 * Why `text` may not be shown to a person as it is, or null. Refused: C0 and C1 controls (tab too: a
 * manifest string is one line), DEL, bidi embeddings, overrides, isolates and marks, and zero-width
 * characters. Each can make a terminal show something other than the bytes being approved (an 8-bit
 * CSI erasing lines, a right-to-left override reordering a command, an invisible character inside a
 * path).
 */
export function displayProblem(text: string): string | null {
  for (const ch of text) {
    const c = ch.codePointAt(0) as number;
    const hex = `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
    if (c < 0x20) return `it contains the control character ${hex}`;
    if (c === 0x7f) return `it contains the control character ${hex} (DEL)`;
    if (c >= 0x80 && c <= 0x9f) return `it contains the C1 control character ${hex}, which a terminal may obey`;
    if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c === 0x200e || c === 0x200f || c === 0x061c) {
      return `it contains the bidirectional control ${hex}, which reorders what is shown`;
    }
    if ((c >= 0x200b && c <= 0x200d) || c === 0x2060 || c === 0xfeff)
      return `it contains the invisible character ${hex}`;
  }
  return null;
}

/** npm's rule for package names (lower case, URL-safe, optional scope), which dependencies must follow. */
const NPM_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

/**
 * Whether a dependency spec is a plain registry version, range or dist-tag: what npm fetches from the
 * configured registry and nothing else. Anything with `:` (git+ssh:, file:, link:, npm: aliases,
 * URLs), `/` (GitHub shorthand, paths), a leading `.` or `~/`, or a tarball file name is not.
 */
export function isRegistrySpec(spec: string): boolean {
  if (spec.length > 256) return false;
  if (!/^[A-Za-z0-9 .*^~<>=|+_-]*$/.test(spec)) return false;
  if (spec.startsWith('.')) return false;
  if (/\.(tgz|tar|tar\.gz)$/i.test(spec)) return false;
  return true;
}

function manifestError(file: string, errors: FieldError[]): AdiError {
  const lines = errors.map((e) => `  ${formatFieldError(e)}`);
  return new AdiError('BAD_MANIFEST', `Invalid plugin manifest ${file}:\n${lines.join('\n')}`);
}

/** Read and validate `<dir>/package.json`. Throws BAD_MANIFEST naming each bad field. */
export function readManifest(dir: string, options: ManifestOptions = {}): PluginManifest {
  const real = path.join(dir, 'package.json');
  const file = options.display ?? real;
  let text: string;
  try {
    const st = fs.statSync(real);
    if (!st.isFile()) throw new AdiError('BAD_MANIFEST', `${file} is not a regular file.`);
    if (st.size > MAX_MANIFEST_BYTES)
      throw new AdiError(
        'BAD_MANIFEST',
        `${file} is ${st.size} bytes; a manifest may have at most ${MAX_MANIFEST_BYTES}.`,
      );
    text = fs.readFileSync(real, 'utf8');
  } catch (err) {
    if (err instanceof AdiError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new AdiError(
        'BAD_MANIFEST',
        `${file} does not exist: a plugin is a folder (or npm package) with a package.json.`,
      );
    throw new AdiError('BAD_MANIFEST', `Cannot read ${file}: ${code ?? (err as Error).message}`);
  }
  let pkg: unknown;
  try {
    pkg = JSON.parse(text);
  } catch (err) {
    throw new AdiError('BAD_MANIFEST', `${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseManifest(pkg, file, options);
}

/** Validate a parsed package.json; `file` names it in messages. */
export function parseManifest(pkg: unknown, file: string, options: ManifestOptions = {}): PluginManifest {
  const errors: FieldError[] = [];
  const fail = (field: string, message: string): void => {
    errors.push({ field, message });
  };
  if (!isPlainObject(pkg))
    throw manifestError(file, [{ field: '(package.json)', message: `expected a JSON object, got ${describe(pkg)}` }]);

  const name = pkg.name;
  if (typeof name !== 'string') fail('name', `is required: the plugin's name (a string), got ${describe(name)}`);
  else if (name.startsWith('@'))
    fail(
      'name',
      `scoped package names (${JSON.stringify(name)}) cannot be plugin names yet: publish it under a plain name`,
    );
  else if (!NAME_PATTERN.test(name) || name.includes('..')) {
    fail(
      'name',
      `${JSON.stringify(name)} is not a valid plugin name: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit, with no '..'`,
    );
  }
  // Every string a person reads in the prompt, the list or a message is checked for what a terminal
  // would not show as it is.
  const shown = (field: string, value: unknown): void => {
    if (typeof value !== 'string') return;
    const why = displayProblem(value);
    if (why !== null) fail(field, `${why}: manifest strings shown to a person must be plain text`);
  };
  shown('name', name);
  const version = pkg.version;
  if (typeof version !== 'string' || version === '' || version.length > 256) {
    fail('version', `is required: a version string like "1.0.0", got ${describe(version)}`);
  }
  shown('version', version);
  if (pkg.description !== undefined && typeof pkg.description !== 'string')
    fail('description', `expected a string, got ${describe(pkg.description)}`);
  shown('description', pkg.description);
  // npm would install these from the package's own folders or tarball, which is not where adi gets
  // dependencies (the registry, into a folder of its own).
  for (const key of ['workspaces', 'bundleDependencies', 'bundledDependencies'] as const) {
    const v = pkg[key];
    if (v === undefined || v === false || (Array.isArray(v) && v.length === 0)) continue;
    fail(
      key,
      key === 'workspaces'
        ? 'a plugin cannot be a workspace root: publish each package on its own'
        : 'bundled dependencies ship code from the package instead of the registry; list them in "dependencies" instead',
    );
  }

  const adi = pkg.adi;
  let service: PluginService | null = null;
  if (adi !== undefined) {
    if (!isPlainObject(adi)) fail('adi', `expected an object like { "service": { ... } }, got ${describe(adi)}`);
    else {
      for (const key of Object.keys(adi)) if (key !== 'service') fail(`adi.${key}`, 'unknown field (known: service)');
      if (adi.service !== undefined) service = parseService(adi.service, errors, options);
    }
  }

  const bin =
    service !== null || pkg.bin !== undefined
      ? parseBin(pkg.bin, typeof name === 'string' ? name : '', errors, service !== null)
      : null;

  if (bin !== null) shown(typeof pkg.bin === 'string' ? 'bin' : 'bin (its path)', bin);

  const deps: Record<'dependencies' | 'optionalDependencies', Record<string, string>> = {
    dependencies: {},
    optionalDependencies: {},
  };
  const nonRegistry: NonRegistryDependency[] = [];
  for (const key of ['dependencies', 'optionalDependencies'] as const) {
    const value = pkg[key];
    if (value === undefined) continue;
    if (!isPlainObject(value)) {
      fail(key, `expected an object of package names and versions, got ${describe(value)}`);
      continue;
    }
    if ('adi-daemon' in value) {
      fail(
        `${key}.adi-daemon`,
        'adi-daemon must be a peerDependency: adi provides its own package to the plugin, never a copy from the registry',
      );
    }
    for (const [dep, spec] of Object.entries(value)) {
      const why = displayProblem(dep);
      if (why !== null || !NPM_NAME.test(dep) || dep.length > 214) {
        fail(`${key}`, `${JSON.stringify(dep)} is not a valid npm package name${why !== null ? ` (${why})` : ''}`);
        continue;
      }
      if (typeof spec !== 'string') {
        fail(`${key}.${dep}`, `expected a version or range string, got ${describe(spec)}`);
        continue;
      }
      shown(`${key}.${dep}`, spec);
      deps[key][dep] = spec;
      if (!isRegistrySpec(spec)) nonRegistry.push({ field: key, name: dep, spec });
    }
  }
  const hasDependencies = Object.keys(deps.dependencies).length + Object.keys(deps.optionalDependencies).length > 0;

  if (errors.length > 0) throw manifestError(file, errors);
  return {
    name: name as string,
    version: version as string,
    bin,
    service,
    hasDependencies,
    file,
    dependencies: deps.dependencies,
    optionalDependencies: deps.optionalDependencies,
    nonRegistry,
  };
}

function parseService(raw: unknown, errors: FieldError[], options: ManifestOptions): PluginService | null {
  const field = (f: string): string => `adi.service.${f}`;
  const fail = (f: string, message: string): void => {
    errors.push({ field: field(f), message });
  };
  if (!isPlainObject(raw)) {
    errors.push({
      field: 'adi.service',
      message: `expected an object with at least "name" and "command", got ${describe(raw)}`,
    });
    return null;
  }
  const before = errors.length;
  for (const key of Object.keys(raw)) {
    const refused = REFUSED_FIELDS[key];
    if (refused !== undefined) fail(key, refused);
    else if (!SERVICE_FIELDS.has(key)) fail(key, `unknown field (known: ${[...SERVICE_FIELDS].join(', ')})`);
  }

  const shown = (f: string, value: unknown): void => {
    if (typeof value !== 'string') return;
    const why = displayProblem(value);
    if (why !== null) fail(f, `${why}: manifest strings shown to a person must be plain text`);
  };
  const name = raw.name;
  shown('name', name);
  shown('command', raw.command);
  if (name === undefined) fail('name', "is required: the service's name");
  else if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name.includes('..')) {
    fail(
      'name',
      `${typeof name === 'string' ? JSON.stringify(name) : describe(name)} is not a valid service name: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit, with no '..'`,
    );
  }

  const command = raw.command;
  if (command === undefined) fail('command', 'is required: the plugin subcommand that runs the service, e.g. "serve"');
  else if (typeof command !== 'string' || command === '' || command.includes('\0')) {
    fail('command', `expected a non-empty string (the plugin subcommand, e.g. "serve"), got ${describe(command)}`);
  }

  let args: string[] = [];
  if (raw.args !== undefined) {
    if (!Array.isArray(raw.args)) fail('args', `expected an array of strings, got ${describe(raw.args)}`);
    else {
      raw.args.forEach((a: unknown, i) => {
        if (typeof a !== 'string' || a.includes('\0'))
          fail(`args[${i}]`, `expected a string without NUL, got ${describe(a)}`);
        else shown(`args[${i}]`, a);
      });
      args = raw.args.filter((a): a is string => typeof a === 'string');
    }
  }

  let privileged: string[] = [];
  if (raw.privileged_commands !== undefined) {
    const pc = raw.privileged_commands;
    if (!Array.isArray(pc))
      fail(
        'privileged_commands',
        `expected an array of strings (command patterns like "iptables -t nat -L"), got ${describe(pc)}`,
      );
    else {
      pc.forEach((p: unknown, i) => {
        if (typeof p !== 'string') {
          fail(`privileged_commands[${i}]`, `expected a string, got ${describe(p)}`);
          return;
        }
        const why = displayProblem(p.replace(/\t/g, ' '));
        if (why !== null) {
          fail(`privileged_commands[${i}]`, `${why}: a pattern must read exactly as it is approved`);
          return;
        }
        try {
          compilePattern(p, options.resolve);
        } catch (err) {
          fail(`privileged_commands[${i}]`, err instanceof Error ? err.message : String(err));
        }
      });
      privileged = pc.filter((p): p is string => typeof p === 'string');
      const seen = new Set<string>();
      for (const p of privileged) {
        if (seen.has(p)) fail('privileged_commands', `lists ${JSON.stringify(p)} twice`);
        seen.add(p);
      }
    }
  }

  // The other fields mean what they mean in services.toml: validate them the same way.
  const fields: Record<string, unknown> = {};
  for (const key of PASSED_FIELDS) if (raw[key] !== undefined) fields[key] = raw[key];
  const check = validateServiceConfig({ command: '/plugin', ...fields }, { plugin: PLUGIN_RULES });
  for (const e of check.errors) errors.push({ field: field(e.field), message: e.message });
  if (errors.length > before) return null;
  return { name: name as string, command: command as string, args, privileged_commands: privileged, fields };
}

function parseBin(raw: unknown, pkgName: string, errors: FieldError[], required: boolean): string | null {
  let chosen: unknown;
  let field = 'bin';
  if (raw === undefined) {
    if (required)
      errors.push({
        field: 'bin',
        message: 'is required for a plugin with a service: the script whose subcommand runs it, e.g. "cli.js"',
      });
    return null;
  }
  if (typeof raw === 'string') chosen = raw;
  else if (isPlainObject(raw)) {
    const keys = Object.keys(raw);
    if (pkgName in raw) {
      chosen = raw[pkgName];
      field = `bin.${pkgName}`;
    } else if (keys.length === 1) {
      chosen = raw[keys[0] as string];
      field = `bin.${keys[0] as string}`;
    } else {
      errors.push({
        field: 'bin',
        message: `has ${keys.length} entries and none is named like the package (${JSON.stringify(pkgName)}): name the plugin's own bin after it`,
      });
      return null;
    }
  } else {
    errors.push({ field: 'bin', message: `expected a path string or an object of name: path, got ${describe(raw)}` });
    return null;
  }
  if (typeof chosen !== 'string' || chosen === '' || chosen.includes('\0')) {
    errors.push({ field, message: `expected a relative path to a script in the package, got ${describe(chosen)}` });
    return null;
  }
  const normal = path.posix.normalize(chosen.replace(/\\/g, '/'));
  if (path.posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../') || normal === '.') {
    errors.push({ field, message: `${JSON.stringify(chosen)} must be a path inside the package` });
    return null;
  }
  return normal;
}

/**
 * The service's raw config (ServiceConfig fields) for a plugin installed at `dir`: the plugin's bin
 * run by `node` with the subcommand, in the plugin's folder, never privileged.
 */
export function serviceConfig(
  m: PluginManifest,
  dir: string,
  node: string = process.execPath,
): Record<string, unknown> {
  if (m.service === null || m.bin === null)
    throw new AdiError('BAD_MANIFEST', `${m.file}: the plugin ${m.name} defines no service.`);
  return {
    ...m.service.fields,
    command: node,
    args: [path.join(dir, m.bin), m.service.command, ...m.service.args],
    working_dir: dir,
    privileged: false,
  };
}

/** serviceConfig, validated and normalised (throws BAD_MANIFEST naming the fields). */
export function normalizedServiceConfig(m: PluginManifest, dir: string, node?: string): NormalizedConfig {
  const result = validateServiceConfig(serviceConfig(m, dir, node), { plugin: PLUGIN_RULES });
  if (result.config === null)
    throw manifestError(
      m.file,
      result.errors.map((e) => ({ field: `adi.service.${e.field}`, message: e.message })),
    );
  return result.config;
}
