// Shared set-up for the plugin tests: plugin folders written on the fly, the example plugin, npm pack,
// (The daemon reads installed plugins through createPluginSource, wired in src/cli/commands/daemon-run.ts.)

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv, lookupUser } from '../../src/system/privilege.js';
import type { Paths } from '../../src/core/paths.js';
import { writeApproval } from '../../src/plugins/approvals.js';
import { installedDigest } from '../../src/plugins/digest.js';
import { pluginDir, pluginsRoot } from '../../src/plugins/location.js';
import { ROOT, tempHome, type TempHome } from '../helpers/env.js';

export const EXAMPLE = path.join(ROOT, 'examples', 'hello-plugin');

/**
 * A HOME for one test, where privilege separation is surely inactive: ADI_USER names a user that does
 * not exist, so plugins live in `<data dir>/plugins` whatever users this machine has.
 */
export function pluginHome(stageUser = 'adi-itest-stage'): TempHome {
  return tempHome({
    ADI_USER: 'adi-nouser-plugtest',
    ADI_ROOT_USER: 'adi-nouser-plugtest-root',
    ADI_INSTALL_USER: stageUser,
  });
}

/**
 * Remove the install account a root test run made adi create (ADI_INSTALL_USER, one per test file so
 * files running at once do not remove each other's), with its group.
 */
export function removeStageUser(name: string): void {
  if (process.getuid?.() !== 0 || lookupUser(name) === null) return;
  spawnSync('userdel', [name], { env: cleanEnv(), encoding: 'utf8' });
  spawnSync('groupdel', [name], { env: cleanEnv(), encoding: 'utf8' });
}

export interface PluginSpec {
  name?: unknown;
  version?: string;
  /** `adi.service`; null for none. Default: a service "<name>-svc" running `serve`. */
  service?: Record<string, unknown> | null;
  bin?: unknown;
  extra?: Record<string, unknown>;
  /** The cli.js to write (default: `serve` prints and sleeps). */
  cli?: string;
}

/** A plugin folder with a package.json from `spec` and a cli.js whose `serve` sleeps. */
export function writePlugin(dir: string, spec: PluginSpec = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const name = spec.name ?? 'testplug';
  const service = spec.service === undefined ? { name: `${String(name)}-svc`, command: 'serve' } : spec.service;
  const pkg: Record<string, unknown> = {
    name,
    version: spec.version ?? '1.0.0',
    type: 'module',
    bin: spec.bin ?? { [String(name)]: 'cli.js' },
    peerDependencies: { 'adi-daemon': '*' },
    ...(service !== null ? { adi: { service } } : {}),
    ...spec.extra,
  };
  if (spec.bin === null) delete pkg.bin;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  fs.writeFileSync(
    path.join(dir, 'cli.js'),
    spec.cli ?? "if (process.argv[2] === 'serve') { console.log('serving'); setInterval(() => {}, 1000); }\n",
  );
  return dir;
}

/** `npm pack` of a folder into `dest`; returns the .tgz path. */
export function npmPack(folder: string, dest: string, env: NodeJS.ProcessEnv): string {
  fs.mkdirSync(dest, { recursive: true });
  const r = spawnSync('npm', ['pack', folder, '--pack-destination', dest, '--json', '--ignore-scripts'], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Array<{ filename: string }>;
  return path.join(dest, (out[0] as { filename: string }).filename);
}

/**
 * A package tarball of a folder as npm lays it out (every file under `package/`), made with tar: for
 * packages that are set-up to a test, not its subject. `npm pack` costs ~0.6 s of CPU (npm itself
 * loading); a test about what npm pack makes uses npmPack. The folder must hold only what the package
 * should (no node_modules, no .npmrc: npm pack would leave those out).
 */
export function tarPack(folder: string, dest: string): string {
  fs.mkdirSync(dest, { recursive: true });
  const { name, version } = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  const out = path.join(dest, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`);
  const r = spawnSync(
    'tar',
    ['-czf', out, '--owner=0', '--group=0', '--numeric-owner', '--transform', 's,^\\.,package,', '-C', folder, '.'],
    { env: cleanEnv(), encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return out;
}

/**
 * An approval of `patterns` for `plugin` as an install records it, over a minimal installed folder
 * (a package.json) where the daemon looks for it: SudoRun checks that folder's digest. For tests that
 * define plugin services without installing them. Returns a cleanup that removes what it created.
 */
export async function approveInstalled(
  paths: Paths,
  plugin: string,
  patterns: string[],
  separation: boolean,
): Promise<() => void> {
  const dir = pluginDir(pluginsRoot(paths, { separation: () => separation }), plugin);
  let created: string | null = null;
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) created = d;
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: plugin, version: '1.0.0' })}\n`, {
    mode: 0o644,
  });
  writeApproval(paths, {
    plugin,
    version: '1.0.0',
    patterns,
    approved_at: new Date().toISOString(),
    tree_digest: await installedDigest(dir),
  });
  return () => fs.rmSync(created ?? dir, { recursive: true, force: true });
}

/**
 * Why tests that unpack or fetch as the install account cannot run here, or false: as root that
 * account must be able to run this node (not so for a node under a 0700 home).
 */
export function stageSkip(): string | false {
  if (process.getuid?.() !== 0) return false;
  let current = path.resolve(process.execPath);
  if ((fs.statSync(current).mode & 0o005) !== 0o005) return `the install account cannot run ${process.execPath}`;
  for (;;) {
    const parent = path.dirname(current);
    if (parent === current) return false;
    if ((fs.statSync(parent).mode & 0o001) === 0)
      return `the install account cannot reach ${process.execPath} (${parent} is closed)`;
    current = parent;
  }
}
