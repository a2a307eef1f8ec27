// Helpers shared by the executor tests (not a test file itself).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolvePaths, type Paths } from '../../src/core/paths.js';
import { isAlive } from '../../src/system/alive.js';
import { waitFor } from '../helpers/env.js';
import type { DaemonClient } from '../../src/client/client.js';
import { startPluginDaemon } from '../privilege/util.js';

export function tempDir(prefix = 'adi-exec-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Paths rooted in a fresh directory, with the given privilege user names. */
export function testPaths(root: string, adiUser: string, adiRootUser: string): Paths {
  return resolvePaths({
    env: {
      HOME: root,
      XDG_DATA_HOME: path.join(root, 'data'),
      XDG_CONFIG_HOME: path.join(root, 'config'),
      ADI_USER: adiUser,
      ADI_ROOT_USER: adiRootUser,
    },
    home: root,
    platform: 'linux',
  });
}

/** Whether a process is still running (a zombie counts as dead: it runs nothing). */
export { isAlive };

export async function waitDead(pid: number, ms = 3000): Promise<boolean> {
  return waitFor(() => !isAlive(pid), ms, `pid ${pid} to end`).then(
    () => true,
    () => false,
  );
}

/** Waits for a file to hold a pid (written by a fixture command) and returns it. */
export function readPidFile(file: string, ms = 3000): Promise<number> {
  return waitFor(
    () => {
      try {
        const n = Number(fs.readFileSync(file, 'utf8').trim());
        return Number.isInteger(n) && n > 0 ? n : 0;
      } catch {
        return 0; // not written yet
      }
    },
    ms,
    `a pid in ${file}`,
  );
}

export interface AuditRecord {
  time: string;
  identity: string;
  action: string;
  argv: string[];
  reason: string | null;
  result: Record<string, unknown>;
  as?: string;
  pattern?: string;
  argv_truncated?: boolean;
}

export function readAudit(file: string): AuditRecord[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditRecord);
}

/**
 * A real daemon (test/privilege/fixtures/plugin-daemon) with one plugin-defined service that writes
 * its identity token to a file: the test then connects as that plugin. Returns an admin client and
 * the plugin's token. Works without root (the service runs as the current user, token and all).
 */
export async function daemonWithPlugin(
  h: { home: string; env: NodeJS.ProcessEnv },
  plugin = 'tester',
): Promise<{ admin: DaemonClient; token: string }> {
  const tokenFile = path.join(h.home, `${plugin}.token`);
  const admin = await startPluginDaemon(
    h.home,
    h.env,
    [
      {
        name: `${plugin}-svc`,
        plugin,
        config: {
          command: '/bin/sh',
          args: ['-c', 'printf %s "$ADI_DAEMON_TOKEN" > "$0"; exec sleep 600', tokenFile],
          restart_on_failure: false,
        },
      },
    ],
    [`${plugin}-svc`],
  );
  await admin.startService(`${plugin}-svc`);
  const token = await waitFor(
    () => {
      try {
        return fs.readFileSync(tokenFile, 'utf8');
      } catch {
        return ''; // not written yet
      }
    },
    10_000,
    `the plugin service to write its token to ${tokenFile}`,
  );
  return { admin, token };
}
