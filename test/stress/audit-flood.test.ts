// The audit flood: 20 concurrent denied SudoRuns, each with 256 arguments of 4,096 control characters
// (six bytes each once JSON-escaped), repeated for several seconds, from the admin (denied: no
// separation) and from anonymous clients (refused at the door, audited too). audit.log and its rotated
// files stay under the configured cap, the floods are summarised, and the daemon keeps answering.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { AdiError } from '../../src/core/errors.js';
import { auditFile } from '../../src/executor/audit.js';
import { adi, tempHome, type TempHome } from '../helpers/env.js';

const CAP = 512 * 1024;
let h: TempHome | undefined;
after(async () => {
  await h?.cleanup();
});

function auditFiles(file: string): string[] {
  const dir = path.dirname(file);
  return fs
    .readdirSync(dir)
    .filter((f) => f === 'audit.log' || f.startsWith('audit.log.'))
    .map((f) => path.join(dir, f));
}

test('a flood of huge denied SudoRuns leaves audit.log and its rotated files under the cap', async () => {
  h = tempHome({
    ADI_USER: 'adi-t12-none',
    ADI_ROOT_USER: 'adi-t12-none-root',
    ADI_DAEMON_AUDIT_MAX_BYTES: String(CAP),
    ADI_DAEMON_AUDIT_MAX_FILES: '3',
  });
  const started = await adi(['daemon', 'start'], h.env);
  assert.equal(started.code, 0, started.stderr);
  const args = Array.from({ length: 256 }, (_, i) => String.fromCharCode(1 + (i % 30)).repeat(4096));
  const admins = [0, 1].map(() => new DaemonClient({ env: h!.env, timeoutMs: 60_000 }));
  const anons = [0, 1].map(() => new DaemonClient({ env: h!.env, timeoutMs: 60_000, token: null }));
  const file = auditFile(h.paths);
  let requests = 0;
  let most = 0;
  try {
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      const round = Array.from({ length: 20 }, (_, i) => {
        const c = i % 2 === 0 ? admins[i % 4 === 0 ? 0 : 1] : anons[i % 4 === 1 ? 0 : 1];
        return c!.sudoRun('/usr/bin/id', args, '\u0007'.repeat(1000)).then(
          () => 'ran',
          (e: unknown) => (e instanceof AdiError ? e.code : String(e)),
        );
      });
      const codes = await Promise.all(round);
      assert.ok(
        codes.every((c) => c === 'SUDO_DENIED' || c === 'UNAUTHORIZED'),
        codes.join(','),
      );
      requests += round.length;
      most = Math.max(
        most,
        auditFiles(file).reduce((n, f) => n + fs.statSync(f).size, 0),
      );
    }
    assert.ok((await admins[0]!.ping()).pid > 0, 'the daemon answers');
  } finally {
    for (const c of [...admins, ...anons]) c.close();
  }
  // Pending counts are written within a second; the stop writes the rest.
  await adi(['daemon', 'stop'], h.env);
  const files = auditFiles(file);
  const total = files.reduce((n, f) => n + fs.statSync(f).size, 0);
  const lines = files
    .flatMap((f) =>
      fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    )
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const suppressed = lines.filter((l) => l.action === 'suppressed').reduce((n, l) => n + Number(l.count), 0);
  console.log(
    `# ${requests} requests of ${256 * 4096} control characters each; ${files.length} audit files, ${total} bytes at the end, at most ${most} (cap ${CAP}); ${suppressed} entries summarised`,
  );
  assert.ok(requests >= 100, `${requests} requests`);
  assert.ok(most <= CAP && total <= CAP, `audit files hold ${Math.max(most, total)} bytes; the cap is ${CAP}`);
  assert.ok(files.includes(`${file}.1`), 'the log rotated');
  assert.ok(suppressed > 0, 'repeated entries were summarised');
  assert.ok(
    lines.some((l) => l.identity === 'anonymous' && l.action === 'sudo_denied'),
    'anonymous attempts are in it',
  );
  assert.ok(lines.some((l) => l.identity === 'admin' && l.action === 'sudo_denied'));
});
