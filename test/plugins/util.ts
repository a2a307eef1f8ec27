// Shared set-up for the plugin tests: plugin folders written on the fly, the example plugin, npm pack,
// (The daemon reads installed plugins through createPluginSource, wired in src/cli/commands/daemon-run.ts.)

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cleanEnv, lookupUser } from '../../src/executor/privilege.js';
import { ROOT, tempHome, type TempHome } from '../helpers/env.js';

export const EXAMPLE = path.join(ROOT, 'examples', 'hello-plugin');


/**
 * A HOME for one test, where privilege separation is surely inactive: ADI_USER names a user that does
 * not exist, so plugins live in `<data dir>/plugins` whatever users this machine has.
 */
export function pluginHome(stageUser = 'adi-itest-stage'): TempHome {
  return tempHome({ ADI_USER: 'adi-nouser-plugtest', ADI_ROOT_USER: 'adi-nouser-plugtest-root', ADI_INSTALL_USER: stageUser });
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
  const r = spawnSync('npm', ['pack', folder, '--pack-destination', dest, '--json', '--ignore-scripts'], { env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Array<{ filename: string }>;
  return path.join(dest, (out[0] as { filename: string }).filename);
}
