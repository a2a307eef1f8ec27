// Helpers for the privilege tests (not a test file): users, /proc, a copy of the client plugins import,
// and a daemon with plugin-defined services.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DaemonClient } from '../../src/client/client.js';
import { cleanEnv, lookupUser } from '../../src/system/privilege.js';
import type { ServiceConfig } from '../../src/protocol/types.js';
import { FIXTURES, ROOT, waitFor } from '../helpers/env.js';
import { liveProcesses } from '../helpers/proc.js';

export { environOf } from '../helpers/proc.js';

export const LAUNCHER = path.join(ROOT, 'dist', 'test', 'privilege', 'fixtures', 'plugin-daemon.js');

export function sh(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** Whether every directory above `file` lets others pass and the file lets others read (and run). */
export function reachableByOthers(file: string): boolean {
  let current = path.resolve(file);
  try {
    if ((fs.statSync(current).mode & 0o004) === 0) return false;
  } catch {
    return false;
  }
  for (;;) {
    const parent = path.dirname(current);
    if (parent === current) return true;
    if ((fs.statSync(parent).mode & 0o001) === 0) return false;
    current = parent;
  }
}

function uidOf(pid: string): number | null {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** Live pids whose environment carries one of these run markers (ADI_SERVICE_ID). */
export function pidsWithMarker(markers: ReadonlySet<string>): number[] {
  return liveProcesses()
    .filter((p) => p.marker !== null && markers.has(p.marker))
    .map((p) => p.pid);
}

/** SIGKILL every process of these users (they would make userdel fail); found by uid in /proc. */
export function killProcessesOf(users: string[]): void {
  const uids = new Set(users.map((u) => lookupUser(u)?.uid).filter((u): u is number => u !== undefined));
  if (uids.size === 0) return;
  for (const { pid } of liveProcesses()) {
    const uid = uidOf(String(pid));
    if (uid !== null && uids.has(uid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

function chmodTree(p: string): void {
  const st = fs.lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    fs.chmodSync(p, 0o755);
    for (const e of fs.readdirSync(p)) chmodTree(path.join(p, e));
  } else {
    fs.chmodSync(p, (st.mode & 0o100) !== 0 ? 0o755 : 0o644);
  }
}

/**
 * A copy of what a plugin imports (the package's dist/src and its dependencies) and the probe fixture,
 * in `dir`, readable by everyone: the checkout may sit in a private home. Returns the probe script and
 * the file URL of the client's index.js to pass it.
 */
export function pluginRuntime(dir: string): { probe: string; client: string } {
  const rt = path.join(dir, 'rt');
  fs.mkdirSync(rt, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(rt, 'package.json'));
  fs.cpSync(path.join(ROOT, 'dist', 'src'), path.join(rt, 'dist', 'src'), { recursive: true });
  for (const dep of ['smol-toml']) {
    fs.cpSync(path.join(ROOT, 'node_modules', dep), path.join(rt, 'node_modules', dep), {
      recursive: true,
      dereference: true,
    });
  }
  const probe = path.join(dir, 'plugin-probe.js');
  fs.copyFileSync(path.join(FIXTURES, 'plugin-probe.js'), probe);
  chmodTree(dir);
  return { probe, client: pathToFileURL(path.join(rt, 'dist', 'src', 'index.js')).href };
}

export interface PluginDef {
  name: string;
  plugin: string;
  config: ServiceConfig;
}

/**
 * Start the test daemon (fixtures/plugin-daemon.ts) in the background with `env`, optionally as
 * another user, and wait until it answers and knows the services `expect`. Its output goes to
 * `<home>/daemon.out`.
 */
export async function startPluginDaemon(
  home: string,
  env: NodeJS.ProcessEnv,
  defs: PluginDef[],
  expect: string[],
  as?: { uid: number; gid: number },
): Promise<DaemonClient> {
  const defsFile = path.join(home, 'plugin-defs.json');
  fs.writeFileSync(defsFile, JSON.stringify(defs));
  const outFile = path.join(home, 'daemon.out');
  const out = fs.openSync(outFile, 'a');
  if (as !== undefined) {
    fs.chownSync(defsFile, as.uid, as.gid);
    fs.fchownSync(out, as.uid, as.gid);
  }
  try {
    const child = spawn(process.execPath, [LAUNCHER, 'daemon', 'run', defsFile], {
      env,
      cwd: '/',
      detached: true,
      stdio: ['ignore', out, out],
      ...(as !== undefined ? { uid: as.uid, gid: as.gid } : {}),
    });
    child.unref();
  } finally {
    fs.closeSync(out);
  }
  // A client that connects while the daemon starts may read the token file before the daemon has
  // written it (and then stays anonymous): wait with a throwaway client, then open the real one.
  const waiter = new DaemonClient({ env, timeoutMs: 30_000, token: null });
  const client = new DaemonClient({ env, timeoutMs: 30_000 });
  try {
    await waiter.waitUntilRunning(30_000);
    waiter.close();
    // The daemon answers as soon as it listens; its definitions are loaded a moment later.
    await waitFor(
      async () => {
        const names = new Set((await client.listServices()).map((s) => s.name));
        return expect.every((n) => names.has(n));
      },
      30_000,
      `services ${expect.join(', ')} to be defined`,
    );
  } catch (err) {
    throw new Error(`${String(err)}\ndaemon output:\n${fs.readFileSync(outFile, 'utf8')}`);
  }
  return client;
}

/** The `REPORT {...}` line a probe service wrote to its log (polls until it is there). */
export async function probeReport(client: DaemonClient, service: string, after = 0): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | null = null;
  const waiting = waitFor(
    async () => {
      const lines = await client.serviceLogs(service, { lines: 200 });
      const reports = lines.filter((l) => l.includes(' REPORT '));
      const line = reports[after];
      if (line === undefined) return false;
      found = JSON.parse(line.slice(line.indexOf(' REPORT ') + 8)) as Record<string, unknown>;
      return true;
    },
    30_000,
    `a report from ${service}`,
  );
  try {
    await waiting;
  } catch (err) {
    const lines = await client.serviceLogs(service, { lines: 50 }).catch(() => []);
    throw new Error(`${String(err)}; its log:\n${lines.join('\n')}`);
  }
  return found as unknown as Record<string, unknown>;
}
