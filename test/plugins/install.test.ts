// `adi plugin install | list | uninstall` through the real CLI, without a daemon: the approval prompt
// (n, no answer, y, --yes), manifest errors, reinstall rules, .tgz from npm pack, the adi-daemon link.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { readApproval } from '../../src/plugins/approvals.js';
import { adi, type TempHome } from '../helpers/env.js';
import { EXAMPLE, npmPack, pluginHome, removeStageUser, writePlugin } from './util.js';

const STAGE_USER = 'adi-itest-inst';

let h: TempHome | null = null;
function home(): TempHome {
  h = pluginHome(STAGE_USER);
  return h;
}
void afterEach(async () => {
  await h?.cleanup();
  h = null;
});
void after(() => removeStageUser(STAGE_USER));

function installedNames(t: TempHome): string[] {
  try {
    return fs.readdirSync(t.paths.pluginsDir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

/** Nothing left behind in the plugins folder: no plugin, no staging folder. */
function assertNothingInstalled(t: TempHome): void {
  const left = fs.existsSync(t.paths.pluginsDir) ? fs.readdirSync(t.paths.pluginsDir) : [];
  assert.deepEqual(left, []);
  assert.equal(readApproval(t.paths, 'hello-plugin'), null);
}

void describe('adi plugin install', () => {
  void it('with stdin "n" installs nothing', async () => {
    const t = home();
    const r = await adi(['plugin', 'install', EXAMPLE], t.env, { input: 'n\n' });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /This plugin requests root access for:\n {2}- \/usr\/bin\/id -u\n/);
    assert.match(r.stdout, /Allow\? \[y\/N\] n\n/);
    assert.match(r.stderr, /Not installed: root access was not approved/);
    assertNothingInstalled(t);
  });

  void it('with stdin closed and no --yes refuses and installs nothing', async () => {
    const t = home();
    const r = await adi(['plugin', 'install', EXAMPLE], t.env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /Allow\? \[y\/N\] \nNo answer on stdin \(it is not a terminal\); pass --yes/);
    assertNothingInstalled(t);
  });

  void it('with "y" installs, after showing each pattern; list and --json show it; adi-daemon resolves', async () => {
    const t = home();
    const r = await adi(['plugin', 'install', EXAMPLE], t.env, { input: 'y\n' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /This plugin requests root access for:\n {2}- \/usr\/bin\/id -u\n {6}runs \/usr\/bin\/id as root with the arguments: -u\nAllow\? \[y\/N\] y\n/,
    );
    assert.match(r.stdout, /Installed hello-plugin 1\.0\.0 in /);
    assert.deepEqual(installedNames(t), ['hello-plugin']);
    const approval = readApproval(t.paths, 'hello-plugin');
    assert.deepEqual(approval && { version: approval.version, patterns: approval.patterns }, {
      version: '1.0.0',
      patterns: ['/usr/bin/id -u'],
    });
    assert.equal(fs.statSync(path.join(t.paths.dataDir, 'approvals')).mode & 0o777, 0o700);

    const list = await adi(['plugin', 'list'], t.env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /^NAME\s+VERSION\s+SERVICE\s+APPROVED ROOT ACCESS\nhello-plugin\s+1\.0\.0\s+hello\s+\/usr\/bin\/id -u\n$/,
    );
    const json = await adi(['plugin', 'list', '--json'], t.env);
    const entries = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    assert.equal(entries.length, 1);
    assert.deepEqual(
      { ...entries[0], dir: undefined },
      {
        name: 'hello-plugin',
        version: '1.0.0',
        service: 'hello',
        requested_patterns: ['/usr/bin/id -u'],
        approved_patterns: ['/usr/bin/id -u'],
        approved_version: '1.0.0',
        dir: undefined,
        error: null,
        conflicts: [],
      },
    );

    // The plugin's `import { DaemonClient } from 'adi-daemon'` resolves to this adi, with no registry.
    const dir = path.join(t.paths.pluginsDir, 'hello-plugin');
    const imp = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { DaemonClient } from 'adi-daemon'; console.log(typeof DaemonClient, new DaemonClient().paths.dataDir)",
      ],
      { cwd: dir, env: t.env, encoding: 'utf8' },
    );
    assert.equal(imp.status, 0, imp.stderr);
    assert.equal(imp.stdout.trim(), `function ${t.paths.dataDir}`);
    assert.equal(fs.existsSync(path.join(dir, 'node_modules', 'adi-daemon', 'package.json')), true);
  });

  void it('refuses bad manifests naming the field, and installs nothing', async () => {
    const t = home();
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ service: { name: 'x-svc' } }, /field "adi\.service\.command": is required/],
      [
        { service: { name: '../x', command: 'serve' } },
        /field "adi\.service\.name": "\.\.\/x" is not a valid service name/,
      ],
      [
        { service: { name: 'x-svc', command: 'serve', privileged_commands: 'id -u' } },
        /field "adi\.service\.privileged_commands": expected an array of strings/,
      ],
      [{ name: '../x' }, /field "name": "\.\.\/x" is not a valid plugin name/],
    ];
    for (const [i, [spec, expected]] of cases.entries()) {
      const folder = writePlugin(path.join(t.home, `bad${i}`), spec);
      const r = await adi(['plugin', 'install', folder, '--yes'], t.env);
      assert.equal(r.code, 1, `${JSON.stringify(spec)}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /Invalid plugin manifest .*package\.json:/);
      assert.match(r.stderr, expected);
    }
    assert.deepEqual(fs.readdirSync(t.paths.pluginsDir), []);
  });

  void it('reinstall: changed patterns or files ask again ("n" keeps the old version and approval); an identical package does not', async () => {
    const t = home();
    const src = path.join(t.home, 'src');
    writePlugin(src, {
      name: 'net',
      version: '1.0.0',
      service: { name: 'net-svc', command: 'serve', privileged_commands: ['/usr/bin/id -u'] },
    });
    assert.equal((await adi(['plugin', 'install', src], t.env, { input: 'y\n' })).code, 0);

    writePlugin(src, {
      name: 'net',
      version: '2.0.0',
      service: { name: 'net-svc', command: 'serve', privileged_commands: ['/usr/bin/id -u', '/usr/bin/id -g'] },
    });
    const no = await adi(['plugin', 'install', src], t.env, { input: 'n\n' });
    assert.equal(no.code, 1, no.stdout + no.stderr);
    assert.match(
      no.stdout,
      /Changed since your approval of net 1\.0\.0: the version \(1\.0\.0 -> 2\.0\.0\); the privileged commands \(added "\/usr\/bin\/id -g"\); the plugin's own files changed\. Root access needs your approval again\./,
    );
    assert.match(no.stdout, / {2}- \/usr\/bin\/id -u\n[\s\S]* {2}- \/usr\/bin\/id -g\n/);
    assert.match(no.stderr, /Not updated: root access was not approved\. net 1\.0\.0 stays installed/);
    const kept = JSON.parse(fs.readFileSync(path.join(t.paths.pluginsDir, 'net', 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(kept.version, '1.0.0');
    assert.deepEqual(readApproval(t.paths, 'net')?.patterns, ['/usr/bin/id -u']);
    assert.deepEqual(fs.readdirSync(t.paths.pluginsDir), ['net'], 'no staging left');

    // Closed stdin refuses an update too.
    assert.equal((await adi(['plugin', 'install', src], t.env)).code, 1);
    assert.deepEqual(readApproval(t.paths, 'net')?.patterns, ['/usr/bin/id -u']);

    const yes = await adi(['plugin', 'install', src], t.env, { input: 'y\n' });
    assert.equal(yes.code, 0, yes.stdout + yes.stderr);
    assert.match(yes.stdout, /Updating net 2\.0\.0 \(installed: 1\.0\.0\)/);
    assert.deepEqual(readApproval(t.paths, 'net'), {
      ...readApproval(t.paths, 'net'),
      version: '2.0.0',
      patterns: ['/usr/bin/id -u', '/usr/bin/id -g'],
    });

    // Same patterns, new version: the files differ, so it asks again (closed stdin refuses).
    writePlugin(src, {
      name: 'net',
      version: '2.1.0',
      service: { name: 'net-svc', command: 'serve', privileged_commands: ['/usr/bin/id -g', '/usr/bin/id -u'] },
    });
    const same = await adi(['plugin', 'install', src], t.env);
    assert.equal(same.code, 1, same.stdout + same.stderr);
    assert.match(
      same.stdout,
      /Changed since your approval of net 2\.0\.0: the version \(2\.0\.0 -> 2\.1\.0\); the plugin's own files changed\./,
    );
    assert.equal(readApproval(t.paths, 'net')?.version, '2.0.0');

    // The identical package again: no question.
    writePlugin(src, {
      name: 'net',
      version: '2.0.0',
      service: { name: 'net-svc', command: 'serve', privileged_commands: ['/usr/bin/id -u', '/usr/bin/id -g'] },
    });
    const identical = await adi(['plugin', 'install', src], t.env);
    assert.equal(identical.code, 0, identical.stdout + identical.stderr);
    assert.match(identical.stdout, /exactly those you approved for net 2\.0\.0; not asking again/);
    assert.doesNotMatch(identical.stdout, /Allow\?/);

    // Fewer patterns (none): no question, and the old approval is gone rather than carried over.
    writePlugin(src, { name: 'net', version: '3.0.0', service: { name: 'net-svc', command: 'serve' } });
    assert.equal((await adi(['plugin', 'install', src], t.env)).code, 0);
    assert.equal(readApproval(t.paths, 'net'), null);
  });

  void it('installs a .tgz made by npm pack, and --yes approves without asking', async () => {
    const t = home();
    const tgz = npmPack(EXAMPLE, path.join(t.home, 'pack'), t.env);
    const r = await adi(['plugin', 'install', tgz, '--yes'], t.env, { timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, / {2}- \/usr\/bin\/id -u\n[\s\S]*Allowed by --yes\./);
    const dir = path.join(t.paths.pluginsDir, 'hello-plugin');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['README.md', 'cli.js', 'node_modules', 'package.json']);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'node_modules')), ['adi-daemon']);
    assert.deepEqual(fs.readdirSync(t.paths.pluginsDir), ['hello-plugin']);
    const help = spawnSync(process.execPath, [path.join(dir, 'cli.js'), 'help'], { env: t.env, encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage: hello-plugin/);
  });

  void it('a folder is copied without its node_modules', async () => {
    const t = home();
    const src = writePlugin(path.join(t.home, 'withmods'), { name: 'mods', service: null, bin: null });
    fs.mkdirSync(path.join(src, 'node_modules', 'junk'), { recursive: true });
    fs.writeFileSync(path.join(src, 'node_modules', 'junk', 'index.js'), '');
    const r = await adi(['plugin', 'install', src], t.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /root access/);
    assert.deepEqual(fs.readdirSync(path.join(t.paths.pluginsDir, 'mods', 'node_modules')), ['adi-daemon']);
    const list = await adi(['plugin', 'list', '--json'], t.env);
    assert.deepEqual(
      (JSON.parse(list.stdout) as Array<{ name: string; service: unknown }>).map((p) => [p.name, p.service]),
      [['mods', null]],
    );
  });

  void it('uninstall (no daemon) removes the plugin and its approval; an unknown name is an error', async () => {
    const t = home();
    assert.equal((await adi(['plugin', 'install', EXAMPLE, '--yes'], t.env)).code, 0);
    const r = await adi(['plugin', 'uninstall', 'hello-plugin'], t.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Removed hello-plugin and its approval of root access/);
    assertNothingInstalled(t);
    assert.equal(fs.existsSync(path.join(t.paths.dataDir, 'daemon.pid')), false, 'uninstall does not start a daemon');
    const again = await adi(['plugin', 'uninstall', 'hello-plugin'], t.env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /No plugin named hello-plugin is installed/);
    const bad = await adi(['plugin', 'uninstall', '../etc'], t.env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Invalid plugin name/);
  });
});
