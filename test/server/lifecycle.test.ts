// The daemon's lifecycle through the real `adi` command, each test in a fresh empty HOME.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { adi, alive, daemonPids, home, ROOT, waitFor } from '../helpers/env.js';

describe('adi daemon start / status / stop', () => {
  test('start, status and stop leave nothing behind', async () => {
    const h = home();
    const started = await adi(['daemon', 'start'], h.env);
    assert.equal(started.code, 0, started.stderr);
    const pid = Number(/pid (\d+)/.exec(started.stdout)?.[1]);
    assert.ok(pid > 0, started.stdout);
    assert.deepEqual(daemonPids(h.home), [pid]);

    assert.equal(fs.readFileSync(h.paths.pidFile, 'utf8').trim(), String(pid));
    const sock = fs.statSync(h.paths.socket.address);
    assert.ok(sock.isSocket());
    assert.equal(sock.mode & 0o777, 0o600);
    assert.equal(fs.statSync(h.paths.dataDir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(h.paths.tokenFile).mode & 0o777, 0o600);

    const status = await adi(['daemon', 'status'], h.env);
    assert.equal(status.code, 0);
    assert.match(status.stdout, new RegExp(`pid:\\s+${pid}`));
    assert.match(status.stdout, /version:\s+\d+\.\d+\.\d+/);
    const json = JSON.parse((await adi(['daemon', 'status', '--json'], h.env)).stdout) as Record<string, unknown>;
    assert.equal(json['running'], true);
    assert.equal(json['pid'], pid);
    assert.equal(typeof json['version'], 'string');
    assert.equal(typeof json['uptime_secs'], 'number');

    const again = await adi(['daemon', 'start'], h.env);
    assert.equal(again.code, 0);
    assert.match(again.stdout, new RegExp(`already running \\(pid ${pid}\\)`));

    const stopped = await adi(['daemon', 'stop'], h.env);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(alive(pid), false);
    assert.equal(fs.existsSync(h.paths.socket.address), false, 'socket removed');
    assert.equal(fs.existsSync(h.paths.pidFile), false, 'pid file removed');
    assert.equal(fs.existsSync(h.paths.tokenFile), false, 'token file removed');
    assert.match(
      fs.readFileSync(h.paths.logFile, 'utf8'),
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}daemon .* started/m,
    );
  });

  test('status exits 3 when no daemon runs; stop says so and exits 0', async () => {
    const h = home();
    const status = await adi(['daemon', 'status'], h.env);
    assert.equal(status.code, 3);
    assert.match(status.stdout, /not running/);
    const json = await adi(['daemon', 'status', '--json'], h.env);
    assert.equal(json.code, 3);
    assert.equal((JSON.parse(json.stdout) as { running: boolean }).running, false);
    const stop = await adi(['daemon', 'stop'], h.env);
    assert.equal(stop.code, 0);
    assert.match(stop.stdout, /not running/);
    assert.equal(fs.existsSync(h.paths.dataDir), false, 'status and stop do not start a daemon');
  });

  test('after kill -9 a new start replaces the stale socket, pid and lock files', async () => {
    const h = home();
    const first = await adi(['daemon', 'start'], h.env);
    const pid = Number(/pid (\d+)/.exec(first.stdout)?.[1]);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid), 5000, 'daemon to die');
    assert.ok(fs.existsSync(h.paths.socket.address), 'the killed daemon left its socket');
    assert.ok(fs.existsSync(h.paths.lockFile), 'and its lock');

    const status = await adi(['daemon', 'status'], h.env);
    assert.equal(status.code, 3);

    const second = await adi(['daemon', 'start'], h.env);
    assert.equal(second.code, 0, second.stderr);
    const pid2 = Number(/started \(pid (\d+)\)/.exec(second.stdout)?.[1]);
    assert.ok(pid2 > 0 && pid2 !== pid, second.stdout);
    assert.equal(fs.readFileSync(h.paths.pidFile, 'utf8').trim(), String(pid2));
    assert.equal((await adi(['daemon', 'status'], h.env)).code, 0);
  });

  test('five simultaneous starts make exactly one daemon', async () => {
    const h = home();
    const results = await Promise.all(Array.from({ length: 5 }, () => adi(['daemon', 'start'], h.env)));
    const pids = new Set(
      results.map((r) => {
        assert.equal(r.code, 0, r.stderr);
        return Number(/pid (\d+)/.exec(r.stdout)?.[1]);
      }),
    );
    assert.equal(pids.size, 1, `all report the same daemon: ${[...pids].join(', ')}`);
    // The losers exit once they find the lock taken.
    await waitFor(() => daemonPids(h.home).length <= 1, 10_000, 'the losing daemons to exit');
    assert.deepEqual(daemonPids(h.home), [...pids]);
  });

  test('ADI_DAEMON_SOCKET=@name listens on an abstract socket that status and stop find', async () => {
    const name = `@adi-test-${process.pid}-${Date.now()}`;
    const h = home({ ADI_DAEMON_SOCKET: name });
    assert.equal((await adi(['daemon', 'start'], h.env)).code, 0);
    assert.equal(fs.existsSync(path.join(h.paths.dataDir, 'daemon.sock')), false, 'no socket file');
    assert.ok(fs.readFileSync('/proc/net/unix', 'utf8').includes(name), 'the abstract name is bound');
    const status = await adi(['daemon', 'status'], h.env);
    assert.equal(status.code, 0);
    assert.match(status.stdout, new RegExp(`socket:\\s+${name}`));
    assert.equal((await adi(['daemon', 'stop'], h.env)).code, 0);
    assert.equal((await adi(['daemon', 'status'], h.env)).code, 3);
  });

  test('SIGTERM shuts the daemon down gracefully and cleans up', async () => {
    const h = home();
    const pid = Number(/pid (\d+)/.exec((await adi(['daemon', 'start'], h.env)).stdout)?.[1]);
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !alive(pid), 10_000, 'daemon exit');
    assert.equal(fs.existsSync(h.paths.socket.address), false);
    assert.equal(fs.existsSync(h.paths.pidFile), false);
    assert.match(fs.readFileSync(h.paths.logFile, 'utf8'), /received SIGTERM/);
  });

  test('Shutdown{graceful: false} exits at once', async () => {
    const h = home();
    const pid = Number(/pid (\d+)/.exec((await adi(['daemon', 'start'], h.env)).stdout)?.[1]);
    const client = new DaemonClient({ env: h.env });
    await client.shutdown(false);
    client.close();
    await waitFor(() => !alive(pid), 5000, 'daemon exit');
  });

  test('adi daemon run stays in the foreground and logs to the terminal', async () => {
    const h = home();
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'adi.js'), 'daemon', 'run'], {
      env: h.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    await waitFor(() => /listening on/.test(err), 10_000, 'foreground daemon to log');
    const client = new DaemonClient({ env: h.env });
    assert.equal((await client.ping()).pid, child.pid);
    client.close();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0);
    assert.match(err, /received SIGINT/);
  });

  test('a daemon of another version is replaced by start; other commands say so once', async () => {
    // A copy of the package with another version number stands for an older install.
    const h = home();
    const old = path.join(h.home, 'old-adi');
    fs.mkdirSync(old);
    // Only what bin/adi.js runs: the command bundles, not the compiled sources, tests or source maps.
    const skipped = new Set(['src', 'test', 'bench'].map((d) => path.join(ROOT, 'dist', d)));
    const wanted = (from: string): boolean => !from.endsWith('.map') && !skipped.has(from);
    for (const part of ['bin', 'dist'])
      fs.cpSync(path.join(ROOT, part), path.join(old, part), { recursive: true, filter: wanted });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(old, 'node_modules'));
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    fs.writeFileSync(path.join(old, 'package.json'), JSON.stringify({ ...pkg, version: '0.0.1-old' }));
    const oldStart = await new Promise<string>((resolve) => {
      const c = spawn(process.execPath, [path.join(old, 'bin', 'adi.js'), 'daemon', 'start'], { env: h.env });
      let out = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.on('close', () => resolve(out));
    });
    const oldPid = Number(/pid (\d+)/.exec(oldStart)?.[1]);
    assert.ok(oldPid > 0, oldStart);

    const services = await adi(['daemon', 'services'], h.env);
    assert.equal(services.code, 0, services.stderr);
    const notes = services.stderr.split('\n').filter((l) => l.includes('0.0.1-old'));
    assert.equal(notes.length, 1, services.stderr);
    assert.match(notes[0] ?? '', /'adi daemon start' replaces it/);

    const start = await adi(['daemon', 'start'], h.env);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /Replacing the running daemon 0\.0\.1-old/);
    assert.equal(alive(oldPid), false);
    const status = JSON.parse((await adi(['daemon', 'status', '--json'], h.env)).stdout) as { version: string };
    assert.equal(status.version, pkg.version);
  });
});

describe('adi --help / --version', () => {
  test('print usage and the package version', async () => {
    const h = home();
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal((await adi(['--version'], h.env)).stdout.trim(), pkg.version);
    const help = await adi(['--help'], h.env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /adi daemon --help/);
    const dhelp = await adi(['daemon', '--help'], h.env);
    for (const sub of ['run', 'start', 'stop', 'status', 'services', 'restart', 'logs'])
      assert.match(dhelp.stdout, new RegExp(`\\n  ${sub} `));
    const shelp = await adi(['daemon', 'start', '--help'], h.env);
    assert.match(shelp.stdout, /--max-restarts/);
    const bad = await adi(['daemon', 'frobnicate'], h.env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command 'daemon frobnicate'/);
    const badFlag = await adi(['daemon', 'status', '--bogus'], h.env);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /--bogus/);
  });
});
