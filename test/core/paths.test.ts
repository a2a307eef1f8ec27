import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AdiError } from '../../src/core/errors.js';
import { checkName, resolveEndpoint, resolvePaths } from '../../src/core/paths.js';

describe('resolvePaths', () => {
  test('defaults follow the seed: ~/.local/share/adi with daemon.sock, daemon.pid, logs/daemon.log', () => {
    const p = resolvePaths({ env: {}, platform: 'linux', home: '/home/u' });
    assert.equal(p.dataDir, '/home/u/.local/share/adi');
    assert.equal(p.socket.address, '/home/u/.local/share/adi/daemon.sock');
    assert.equal(p.socket.kind, 'unix');
    assert.equal(p.pidFile, '/home/u/.local/share/adi/daemon.pid');
    assert.equal(p.logFile, '/home/u/.local/share/adi/logs/daemon.log');
    assert.equal(p.servicesFile, '/home/u/.config/adi/services.toml');
    assert.equal(p.adiUser, 'adi');
    assert.equal(p.adiRootUser, 'adi-root');
  });

  test('XDG_DATA_HOME, XDG_CONFIG_HOME and the ADI_* overrides win', () => {
    const p = resolvePaths({
      env: {
        XDG_DATA_HOME: '/d',
        XDG_CONFIG_HOME: '/c',
        ADI_DAEMON_SOCKET: '/run/a.sock',
        ADI_DAEMON_PID: '/run/a.pid',
        ADI_DAEMON_LOG: '/var/log/a.log',
        ADI_USER: 'x',
        ADI_ROOT_USER: 'y',
      },
      platform: 'linux',
      home: '/home/u',
    });
    assert.equal(p.dataDir, '/d/adi');
    assert.equal(p.servicesFile, '/c/adi/services.toml');
    assert.equal(p.socket.address, '/run/a.sock');
    assert.equal(p.pidFile, '/run/a.pid');
    assert.equal(p.logFile, '/var/log/a.log');
    assert.equal(p.adiUser, 'x');
    assert.equal(p.adiRootUser, 'y');
  });

  test('@name on Linux is an abstract socket with no file', () => {
    const e = resolveEndpoint('@adi-daemon', 'linux', '/d');
    assert.deepEqual(e, { kind: 'abstract', address: '\0adi-daemon', display: '@adi-daemon', file: null });
    assert.throws(() => resolveEndpoint('@adi-daemon', 'darwin', '/d'), /only Linux/);
  });

  test('Windows uses the named pipe \\\\.\\pipe\\adi-daemon by default', () => {
    const p = resolvePaths({
      env: { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' },
      platform: 'win32',
      home: 'C:\\Users\\u',
    });
    assert.equal(p.socket.kind, 'pipe');
    assert.equal(p.socket.address, '\\\\.\\pipe\\adi-daemon');
    assert.equal(p.dataDir, 'C:\\Users\\u\\AppData\\Local\\adi');
    assert.equal(resolveEndpoint('mine', 'win32', 'C:\\d').address, '\\\\.\\pipe\\mine');
    assert.equal(resolveEndpoint('\\\\.\\pipe\\x', 'win32', 'C:\\d').address, '\\\\.\\pipe\\x');
  });

  test('a socket path over the platform limit is an error that names the override', () => {
    const long = '/tmp/' + 'x'.repeat(120);
    for (const platform of ['linux', 'darwin'] as const) {
      assert.throws(
        () => resolveEndpoint(undefined, platform, long),
        (err: unknown) =>
          err instanceof AdiError && err.code === 'PATH_TOO_LONG' && /ADI_DAEMON_SOCKET/.test(err.message),
      );
    }
    // 107 bytes is the most Linux allows; 103 on macOS.
    const at = (n: number): string => '/' + 'a'.repeat(n - 1);
    assert.equal(resolveEndpoint(at(107), 'linux', '/d').address.length, 107);
    assert.throws(() => resolveEndpoint(at(108), 'linux', '/d'), /allows 107/);
    assert.throws(() => resolveEndpoint(at(104), 'darwin', '/d'), /allows 103/);
    assert.throws(() => resolveEndpoint('@' + 'a'.repeat(108), 'linux', '/d'), /ADI_DAEMON_SOCKET/);
  });
});

describe('checkName', () => {
  test('accepts plain names, refuses anything path-like', () => {
    for (const ok of ['hive', 'a', 'web-1', 'x.y_z', '0abc']) assert.equal(checkName('service', ok), ok);
    for (const bad of ['', '../x', 'a/b', '/x', '.x', '-x', 'A', 'a\0', 'a..b', 'x'.repeat(65)]) {
      assert.throws(() => checkName('service', bad), /Invalid service name/);
    }
  });
});
