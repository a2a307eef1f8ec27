// What the daemon creates on disk is private whatever the umask (socket and token 0600, data and logs
// directories 0700, state file and logs 0600), and a symlink planted at a service's log path is not
// followed into another file: end to end, through the real CLI and daemon.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { ADI, adi, FIXTURES, home, waitFor, type TempHome } from '../helpers/env.js';

/** `adi daemon start` under `umask 000`: every mode below must come from the code, not the umask. */
function startWithOpenUmask(h: TempHome): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `umask 000; exec "$0" "$1" daemon start`, process.execPath, ADI], {
      env: h.env,
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', resolve);
  });
}

const mode = (p: string): string => (fs.lstatSync(p).mode & 0o777).toString(8).padStart(4, '0');

describe('files the daemon creates', () => {
  test('are private under umask 000: socket, token, lock, state file 0600; data and logs dirs 0700; logs 0600', async () => {
    const h = home();
    assert.equal(await startWithOpenUmask(h), 0);
    const client = new DaemonClient({ env: h.env });
    try {
      await client.startService('talker', {
        command: process.execPath,
        args: [path.join(FIXTURES, 'ticker.js'), '50'],
      });
      await waitFor(
        async () => (await client.serviceLogs('talker', { lines: 2 })).length === 2,
        10_000,
        'talker output',
      );
      await waitFor(() => fs.existsSync(h.paths.stateFile), 5000, 'the state file');
      const p = h.paths;
      const modes = {
        dataDir: mode(p.dataDir),
        socket: mode(p.socket.address),
        token: mode(p.tokenFile),
        lock: mode(p.lockFile),
        stateFile: mode(p.stateFile),
        logsDir: mode(p.logsDir),
        daemonLog: mode(p.logFile),
        serviceLog: mode(path.join(p.logsDir, 'talker.log')),
      };
      assert.deepEqual(modes, {
        dataDir: '0700',
        socket: '0600',
        token: '0600',
        lock: '0600',
        stateFile: '0600',
        logsDir: '0700',
        daemonLog: '0600',
        serviceLog: '0600',
      });
      assert.ok(fs.lstatSync(p.socket.address).isSocket());
      // Nothing else in the data directory is readable by others either (the pid file holds no secret).
      for (const name of fs.readdirSync(p.dataDir)) {
        const full = path.join(p.dataDir, name);
        if (full === p.pidFile) continue;
        assert.equal(fs.lstatSync(full).mode & 0o077, 0, `${name} is ${mode(full)}`);
      }
      const token = fs.readFileSync(p.tokenFile, 'utf8');
      assert.ok(!fs.readFileSync(p.stateFile, 'utf8').includes(token), 'the state file does not carry the admin token');
    } finally {
      client.close();
    }
    assert.equal((await adi(['daemon', 'stop'], h.env)).code, 0);
  });

  test('a symlink planted at a service log path is not followed: the target is untouched, the error is reported', async () => {
    const h = home();
    fs.mkdirSync(h.paths.logsDir, { recursive: true, mode: 0o700 });
    const target = path.join(h.home, 'precious.txt');
    fs.writeFileSync(target, 'precious\n');
    fs.symlinkSync(target, path.join(h.paths.logsDir, 'victim.log'));
    fs.mkdirSync(h.paths.configDir, { recursive: true });
    fs.writeFileSync(
      h.paths.servicesFile,
      [
        '[victim]',
        `command = ${JSON.stringify(process.execPath)}`,
        `args = [${JSON.stringify(path.join(FIXTURES, 'ticker.js'))}, "20"]`,
        'auto_start = true',
        '',
        '[bystander]',
        `command = ${JSON.stringify(process.execPath)}`,
        `args = [${JSON.stringify(path.join(FIXTURES, 'ticker.js'))}, "20"]`,
        'auto_start = true',
        '',
      ].join('\n'),
    );
    assert.equal((await adi(['daemon', 'start'], h.env)).code, 0);
    const client = new DaemonClient({ env: h.env });
    try {
      // Both tickers have been writing for a while (the bystander's lines are in its log).
      await waitFor(
        async () => (await client.serviceLogs('bystander', { lines: 3 })).length === 3,
        10_000,
        'the bystander logging',
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(fs.readFileSync(target, 'utf8'), 'precious\n', 'the symlink target is untouched');
      await waitFor(
        async () =>
          (await client.listServices()).find((s) => s.name === 'victim')?.last_error?.includes('ELOOP') === true,
        10_000,
        'the ELOOP error',
      );
      assert.ok(
        fs.lstatSync(path.join(h.paths.logsDir, 'victim.log')).isSymbolicLink(),
        'the symlink is left as it was',
      );
      const victim = (await client.listServices()).find((s) => s.name === 'victim');
      assert.equal(victim?.state, 'running', 'the service itself runs');
      assert.match(
        fs.readFileSync(h.paths.logFile, 'utf8'),
        /service victim: cannot write its log .*victim\.log: ELOOP/,
      );
    } finally {
      client.close();
    }
  });
});
