// The generated boot files as text: the systemd unit (checked by systemd-analyze verify where it is
// installed) and the launchd property list (parsed by Python's plistlib where python3 is installed).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  bootPlan,
  carriedEnvironment,
  launchdPlist,
  systemdExecArg,
  systemdUnit,
  type BootInputs,
} from '../../src/cli/boot.js';

const base: BootInputs = {
  platform: 'linux',
  scope: 'user',
  env: {
    PATH: '/usr/bin:/bin',
    XDG_DATA_HOME: '/data/with space',
    ADI_DAEMON_SOCKET: '@adi-test',
    XDG_RUNTIME_DIR: '/run/user/1',
  },
  home: '/home/u',
  accountHome: '/home/u',
  node: process.execPath,
  cli: '/opt/adi 100%/bin/adi.js',
  uid: 501,
  version: '1.2.3',
  logsDir: '/data/with space/adi/logs',
};

function have(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

describe('systemd unit', () => {
  it('runs `adi daemon run` with absolute paths, restarts on failure, lets the daemon stop its services', () => {
    const unit = systemdUnit(base);
    assert.match(
      unit,
      new RegExp(
        `^ExecStart=${process.execPath.replace(/[.]/g, '\\.')} "/opt/adi 100%%/bin/adi\\.js" daemon run$`,
        'm',
      ),
    );
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^KillMode=mixed$/m);
    assert.match(unit, /^TimeoutStopSec=\d+$/m);
    assert.match(unit, /^WantedBy=default\.target$/m);
    // Only the variables that are set, quoted; XDG_RUNTIME_DIR is the manager's, not carried.
    assert.match(unit, /^Environment="XDG_DATA_HOME=\/data\/with space"$/m);
    assert.match(unit, /^Environment="ADI_DAEMON_SOCKET=@adi-test"$/m);
    assert.match(unit, /^Environment="PATH=\/usr\/bin:\/bin"$/m);
    assert.doesNotMatch(unit, /XDG_RUNTIME_DIR|XDG_CONFIG_HOME|^Environment="HOME=/m);
    assert.doesNotMatch(unit, /^User=/m);
  });

  it('escapes systemd specifiers and variables in ExecStart words', () => {
    assert.equal(systemdExecArg('/usr/bin/node'), '/usr/bin/node');
    assert.equal(systemdExecArg('/a b/$HOME/%h'), '"/a b/$$HOME/%%h"');
    assert.equal(systemdExecArg('say "hi"\\'), '"say \\"hi\\"\\\\"');
  });

  it("carries HOME only when it is not the account's, and refuses values a unit cannot hold", () => {
    // The daemon's own allocator setting always, named as the daemon's only (it is not passed to services).
    const allocator = [
      ['MALLOC_MMAP_THRESHOLD_', '65536'],
      ['ADI_DAEMON_ONLY_ENV', 'MALLOC_MMAP_THRESHOLD_'],
    ];
    assert.deepEqual(carriedEnvironment({ scope: 'user', env: {}, home: '/tmp/h', accountHome: '/home/u' }), [
      ['HOME', '/tmp/h'],
      ...allocator,
    ]);
    assert.deepEqual(
      carriedEnvironment({ scope: 'user', env: {}, home: '/home/u', accountHome: '/home/u' }),
      allocator,
    );
    assert.throws(
      () => carriedEnvironment({ scope: 'user', env: { ADI_USER: 'a\nb' }, home: '/h', accountHome: '/h' }),
      /line break/,
    );
  });

  it('the system unit runs as the given user and is wanted by multi-user.target', () => {
    const unit = systemdUnit({ ...base, scope: 'system', runAs: 'alice' });
    assert.match(unit, /^User=alice$/m);
    assert.match(unit, /^WantedBy=multi-user\.target$/m);
    const plan = bootPlan({ ...base, scope: 'system', runAs: 'alice', root: '/tmp/r' });
    assert.equal(plan.file, '/tmp/r/etc/systemd/system/adi-daemon.service');
    assert.equal(plan.enableShown, 'systemctl enable --now adi-daemon');
    assert.equal(bootPlan(base).enableShown, 'systemctl --user enable --now adi-daemon');
    assert.equal(bootPlan(base).file, '/home/u/.config/systemd/user/adi-daemon.service');
  });

  it('passes systemd-analyze verify (user and system units)', (t) => {
    if (!have('systemd-analyze')) {
      t.diagnostic('systemd-analyze is not installed: the unit was checked as text only (the tests above)');
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-unit-'));
    try {
      const runtime = path.join(dir, 'run');
      fs.mkdirSync(runtime, { mode: 0o700 });
      // The real entry point, so verify's check that ExecStart is executable means something.
      const cli = path.resolve('bin', 'adi.js');
      for (const scope of ['user', 'system'] as const) {
        const file = path.join(dir, 'adi-daemon.service');
        fs.writeFileSync(file, systemdUnit({ ...base, cli, scope, runAs: scope === 'system' ? 'root' : null }));
        const args = scope === 'user' ? ['--user', 'verify', file] : ['verify', file];
        const r = spawnSync('systemd-analyze', args, {
          env: { ...process.env, XDG_RUNTIME_DIR: runtime },
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, `${scope}: ${r.stderr}`);
        // verify reports some mistakes (an unknown KillMode, say) only as a warning naming the file.
        assert.doesNotMatch(r.stderr, /adi-daemon\.service/, `${scope}: ${r.stderr}`);
      }
      // And it does catch a broken unit, so the check above is not vacuous.
      const file = path.join(dir, 'adi-daemon.service');
      fs.writeFileSync(file, systemdUnit({ ...base, cli }).replace('KillMode=mixed', 'KillMode=bogus'));
      const bad = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      assert.match(bad.stderr, /kill mode/i);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('launchd property list', () => {
  const mac: BootInputs = { ...base, platform: 'darwin', home: '/Users/u', accountHome: '/Users/u' };

  it('runs the daemon, restarts it only when it fails, and carries the environment', () => {
    const text = launchdPlist(mac);
    assert.match(text, /<key>Label<\/key><string>adi-daemon<\/string>/);
    assert.match(text, /<key>KeepAlive<\/key>\s*<dict>\s*<key>SuccessfulExit<\/key><false\/>\s*<\/dict>/);
    assert.match(text, /<key>RunAtLoad<\/key><true\/>/);
    assert.match(
      text,
      /<string>\/opt\/adi 100%\/bin\/adi\.js<\/string>\s*<string>daemon<\/string>\s*<string>run<\/string>/,
    );
    assert.match(text, /<key>XDG_DATA_HOME<\/key><string>\/data\/with space<\/string>/);
    const plan = bootPlan(mac);
    assert.equal(plan.file, '/Users/u/Library/LaunchAgents/adi-daemon.plist');
    assert.equal(plan.enableShown, 'launchctl bootstrap gui/501 /Users/u/Library/LaunchAgents/adi-daemon.plist');
    assert.match(
      launchdPlist({ ...mac, scope: 'system', runAs: 'alice' }),
      /<key>UserName<\/key><string>alice<\/string>/,
    );
    assert.match(launchdPlist({ ...mac, env: { ADI_USER: 'a<&>b' } }), /<string>a&lt;&amp;&gt;b<\/string>/);
  });

  it('is a valid property list', (t) => {
    if (!have('python3')) {
      t.diagnostic('python3 is not installed: the property list was checked as text only (the test above)');
      return;
    }
    const r = spawnSync(
      'python3',
      ['-c', 'import plistlib, sys, json; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))'],
      {
        input: launchdPlist({ ...mac, env: { ...mac.env, ADI_USER: 'a<&>"b' } }),
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const plist = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(plist['Label'], 'adi-daemon');
    assert.deepEqual(plist['ProgramArguments'], [
      process.execPath,
      '/opt/adi 100%/bin/adi.js',
      'daemon',
      'run',
      '--background',
    ]);
    assert.deepEqual(plist['KeepAlive'], { SuccessfulExit: false });
    assert.equal((plist['EnvironmentVariables'] as Record<string, string>)['ADI_USER'], 'a<&>"b');
  });

  it('other platforms are refused with the next step', () => {
    assert.throws(() => bootPlan({ ...base, platform: 'win32' }), /not implemented on win32.*adi daemon start/);
  });
});
