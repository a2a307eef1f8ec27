// `adi daemon install` / `uninstall` through the real CLI, in a temp HOME. --now is exercised with a
// stand-in `systemctl` on PATH that records its arguments and starts the daemon as systemd would (the
// test machine's systemd, if any, is never touched).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ADI, adi, daemonPids, home, waitFor } from '../helpers/env.js';
import { shq } from './helpers.js';

describe('adi daemon install / uninstall', () => {
  test('--user writes a unit that runs `adi daemon run` and restarts it; uninstall removes it and its enable link', async () => {
    const h = home();
    const r = await adi(['daemon', 'install', '--user'], h.env);
    assert.equal(r.code, 0, r.stderr);
    const unit = path.join(h.home, '.config', 'systemd', 'user', 'adi-daemon.service');
    assert.match(r.stdout, new RegExp(`Wrote ${unit.replace(/[.]/g, '\\.')}`));
    assert.match(r.stdout, /^ {2}systemctl --user enable --now adi-daemon$/m);
    const text = fs.readFileSync(unit, 'utf8');
    assert.match(
      text,
      new RegExp(
        `^ExecStart=${process.execPath.replace(/[.]/g, '\\.')} ${ADI.replace(/[.]/g, '\\.')} daemon run$`,
        'm',
      ),
    );
    assert.match(text, /^Restart=on-failure$/m);
    assert.match(text, /^KillMode=mixed$/m);
    // The test HOME is not the account's: carried, or the boot-started daemon would use another data dir.
    assert.match(text, new RegExp(`^Environment="HOME=${h.home}"$`, 'm'));
    assert.equal(fs.statSync(unit).mode & 0o777, 0o644);

    // Again: nothing changes. No daemon was started by any of this.
    const again = await adi(['daemon', 'install'], h.env);
    assert.match(again.stdout, /^Unchanged: /);
    assert.deepEqual(daemonPids(h.home), []);

    // What `systemctl --user enable` would have made.
    const wants = path.join(path.dirname(unit), 'default.target.wants');
    fs.mkdirSync(wants);
    fs.symlinkSync(unit, path.join(wants, 'adi-daemon.service'));
    const un = await adi(['daemon', 'uninstall', '--user'], h.env);
    assert.equal(un.code, 0, un.stderr);
    assert.equal(fs.existsSync(unit), false);
    assert.equal(fs.existsSync(path.join(wants, 'adi-daemon.service')), false);
    assert.match(un.stdout, /Removed .*adi-daemon\.service/);
    const none = await adi(['daemon', 'uninstall', '--user'], h.env);
    assert.equal(none.code, 0);
    assert.match(none.stdout, /Not installed/);
  });

  test('the unit goes under $XDG_CONFIG_HOME and carries the data-dir overrides that are set', async () => {
    const h = home();
    const config = path.join(h.home, 'cfg');
    const env = {
      ...h.env,
      XDG_CONFIG_HOME: config,
      XDG_DATA_HOME: path.join(h.home, 'data'),
      ADI_DAEMON_LOG: path.join(h.home, 'd.log'),
    };
    const r = await adi(['daemon', 'install', '--user'], env);
    assert.equal(r.code, 0, r.stderr);
    const text = fs.readFileSync(path.join(config, 'systemd', 'user', 'adi-daemon.service'), 'utf8');
    assert.match(text, new RegExp(`^Environment="XDG_CONFIG_HOME=${config}"$`, 'm'));
    assert.match(text, new RegExp(`^Environment="XDG_DATA_HOME=${h.home}/data"$`, 'm'));
    assert.match(text, new RegExp(`^Environment="ADI_DAEMON_LOG=${h.home}/d\\.log"$`, 'm'));
    assert.doesNotMatch(text, /ADI_DAEMON_SOCKET|ADI_USER/);
  });

  test('--system --root writes the system unit with User= the sudo caller; uninstall removes it', async () => {
    const h = home();
    const root = path.join(h.home, 'root');
    const env = { ...h.env, SUDO_USER: 'alice' };
    const r = await adi(['daemon', 'install', '--system', '--root', root], env);
    assert.equal(r.code, 0, r.stderr);
    const unit = path.join(root, 'etc', 'systemd', 'system', 'adi-daemon.service');
    const text = fs.readFileSync(unit, 'utf8');
    assert.match(text, /^WantedBy=multi-user\.target$/m);
    if (process.getuid?.() === 0) assert.match(text, /^User=alice$/m);
    assert.match(r.stdout, /systemctl enable --now adi-daemon/);
    const un = await adi(['daemon', 'uninstall', '--system', '--root', root], env);
    assert.equal(un.code, 0, un.stderr);
    assert.equal(fs.existsSync(unit), false);
  });

  test('--now runs `systemctl --user enable --now` and waits until the daemon answers', async () => {
    const h = home();
    const bin = path.join(h.home, 'bin');
    const calls = path.join(h.home, 'systemctl.calls');
    fs.mkdirSync(bin);
    // Stand-in systemctl: records its argv; "enable --now" starts the daemon the way the unit would.
    fs.writeFileSync(
      path.join(bin, 'systemctl'),
      [
        '#!/bin/sh',
        `echo "$*" >> ${shq(calls)}`,
        `case "$*" in *"enable --now"*) exec ${shq(process.execPath)} ${shq(ADI)} daemon start >/dev/null ;; esac`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const env = { ...h.env, PATH: `${bin}:${h.env['PATH'] ?? ''}` };
    const r = await adi(['daemon', 'install', '--user', '--now'], env);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /Enabled and started: adi daemon runs \(pid \d+\)/);
    assert.equal(fs.readFileSync(calls, 'utf8'), '--user enable --now adi-daemon.service\n');
    await waitFor(() => daemonPids(h.home).length === 1, 10_000, 'the daemon');

    const un = await adi(['daemon', 'uninstall', '--user', '--now'], env);
    assert.equal(un.code, 0, un.stderr);
    assert.equal(fs.readFileSync(calls, 'utf8').split('\n')[1], '--user disable --now adi-daemon.service');
  });

  test('a failing systemctl is reported with the next step, and the file stays installed', async () => {
    const h = home();
    const bin = path.join(h.home, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, 'systemctl'),
      '#!/bin/sh\necho "Failed to connect to bus: No medium found" >&2\nexit 1\n',
      { mode: 0o755 },
    );
    const r = await adi(['daemon', 'install', '--now'], { ...h.env, PATH: `${bin}:${h.env['PATH'] ?? ''}` });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Failed to connect to bus/);
    assert.match(r.stderr, /adi daemon start/);
    assert.ok(fs.existsSync(path.join(h.home, '.config', 'systemd', 'user', 'adi-daemon.service')));
  });

  test('bad combinations are usage errors', async () => {
    const h = home();
    for (const args of [
      ['--user', '--system'],
      ['--root', '/tmp/x'],
      ['--system', '--root', '/tmp/x', '--now'],
    ]) {
      const r = await adi(['daemon', 'install', ...args], h.env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});
