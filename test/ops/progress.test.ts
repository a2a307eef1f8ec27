// Feedback on long waits: a spinner on stderr only when stderr is a terminal. The wait is made long by
// a service that ignores SIGTERM (stopped after its stop timeout), not by timing anything.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { FIXTURES, adi } from '../helpers/env.js';
import { adiInTty, homeWithDaemon } from './helpers.js';

const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] stopping the daemon and its 1 running service/;

describe('progress on long waits', () => {
  test('daemon stop shows a spinner on a terminal, nothing in a pipe', async (t) => {
    const h = await homeWithDaemon();
    const start = async (): Promise<void> => {
      const r = await adi(
        ['daemon', 'start', 'stubborn', '--stop-timeout', '2', '--', '/bin/sh', path.join(FIXTURES, 'ignore-term.sh')],
        h.env,
      );
      assert.equal(r.code, 0, `start stubborn: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /started stubborn \(pid \d+\)/);
    };

    await start();
    const piped = await adi(['daemon', 'stop'], h.env);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stderr, '');
    assert.match(piped.stdout, /^adi daemon stopped \(pid \d+\)\n$/);

    await start();
    const tty = adiInTty(['daemon', 'stop'], h.env);
    if (tty === null) {
      t.diagnostic('`script` (util-linux) is not installed: the terminal case is untested here');
      await adi(['daemon', 'stop'], h.env);
      return;
    }
    const r = await tty;
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, SPINNER);
    // The line is erased before the result is printed.
    assert.ok(r.output.includes('\r\x1b[Kadi daemon stopped'), JSON.stringify(r.output));
  });

  test('errors name the next step', async () => {
    const h = await homeWithDaemon();
    const r = await adi(['daemon', 'logs', 'nosuch'], h.env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /'adi daemon services'|`adi daemon services`/);
  });
});
