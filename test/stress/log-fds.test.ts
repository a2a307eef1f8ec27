// Stopped services hold no fds: after 40 services have run, logged and been stopped (or exited on
// their own), none of their log files is open in the daemon, and its fd count is back where it was.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { fdCount, settleAtMost, startDaemon } from './helpers.js';

let h: TempHome;
let pid: number;

before(async () => {
  h = tempHome();
  pid = await startDaemon(h);
});
after(async () => {
  await h.cleanup();
});

/** The daemon's open files under the logs directory (its own daemon.log aside). */
function openLogFiles(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith(h.paths.logsDir) && !target.endsWith('daemon.log') && !target.endsWith('audit.log'))
        out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

describe('log files of stopped services', () => {
  test('40 services that logged and stopped leave no log file open', async (t) => {
    const client = new DaemonClient({ env: h.env });
    try {
      await client.ping();
      const base = fdCount(pid);
      const names = Array.from({ length: 40 }, (_, i) => `svc${i}`);
      for (const [i, name] of names.entries()) {
        // Half run until stopped, half exit on their own after a last partial line.
        const script = i % 2 === 0 ? `echo up ${name}; exec sleep 1000` : `echo up ${name}; printf 'no newline'`;
        await client.startService(name, { command: '/bin/sh', args: ['-c', script], restart_on_failure: false });
      }
      await waitFor(
        async () => {
          for (const name of names)
            if (!(await client.serviceLogs(name, { lines: 5 })).some((l) => l.endsWith(` out up ${name}`)))
              return false;
          return true;
        },
        30_000,
        'every service to log',
      );
      const whileRunning = openLogFiles().length;
      for (const [i, name] of names.entries()) if (i % 2 === 0) await client.stopService(name);
      await waitFor(
        async () => (await client.listServices()).every((s) => s.state === 'stopped'),
        30_000,
        'every service stopped',
      );
      const open = await settleAtMost(() => openLogFiles().length, 0, 10_000);
      const fds = await settleAtMost(() => fdCount(pid), base + 2, 10_000);
      t.diagnostic(
        `log files open: ${whileRunning} while the 20 long-running services ran, ${open} after all 40 stopped; daemon fds ${base} -> ${fds}`,
      );
      assert.ok(whileRunning >= 40, `${whileRunning} log files open while running`);
      assert.deepEqual(openLogFiles(), []);
      // Baseline plus at most 2, as in the other fd checks (the process scanner and the like come and go).
      assert.ok(fds <= base + 2, `daemon fds ${base} -> ${fds}`);
      // Their logs are intact, the unfinished last line included, and a restart logs again.
      assert.ok((await client.serviceLogs('svc1', { lines: 5 })).some((l) => l.endsWith(' out no newline')));
      await client.startService('svc0');
      await waitFor(
        async () =>
          (await client.serviceLogs('svc0', { lines: 10 })).filter((l) => l.endsWith(' out up svc0')).length === 2,
        10_000,
        'svc0 to log again',
      );
      await client.stopService('svc0');
    } finally {
      client.close();
    }
  });
});
