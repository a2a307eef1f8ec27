// What an approval covers: the plugin's files (digests), not only its name and patterns. The fix.js
// plugin runs `/usr/bin/node <plugin dir>/fix.js` as root: an update with changed files and the same
// patterns asks again, and with stdin closed is refused while the old version keeps running. The
// SudoRun check (approvedFilesProblem) sees a hand-edited file. Manifest strings with C1 controls,
// bidi overrides or zero-width characters are refused naming the field. Service names have owners.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { readApproval } from '../../src/plugins/approvals.js';
import { approvedFilesProblem } from '../../src/plugins/digest.js';
import { approvalLines } from '../../src/plugins/prompt.js';
import { listServices } from '../helpers/daemon.js';
import { adi, waitFor, type TempHome } from '../helpers/env.js';
import { pluginHome, removeStageUser, writePlugin } from './util.js';

const STAGE_USER = 'adi-itest-appr';
let h: TempHome | null = null;
function home(): TempHome {
  h = pluginHome(STAGE_USER);
  return h;
}
void afterEach(async () => {
  if (h !== null) await adi(['daemon', 'stop'], h.env).catch(() => undefined);
  await h?.cleanup();
  h = null;
});
void after(() => removeStageUser(STAGE_USER));

/** The fix.js plugin: a service, and a pattern that runs its own fix.js with node as root. */
function fixPlugin(t: TempHome, src: string, version: string, fix: string): string {
  const pattern = `${process.execPath} ${path.join(t.paths.pluginsDir, 'fix')}/fix.js`;
  writePlugin(src, {
    name: 'fix',
    version,
    service: { name: 'fix-svc', command: 'serve', privileged_commands: [pattern] },
  });
  fs.writeFileSync(path.join(src, 'fix.js'), fix);
  return pattern;
}

async function services(t: TempHome): Promise<ServiceInfo[]> {
  const r = await adi(['daemon', 'services', '--json'], t.env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ServiceInfo[];
}

void describe('approvals cover the files', () => {
  void it('fix.js: an update with changed files and the same patterns asks again; closed stdin refuses, the old version keeps running', async () => {
    const t = home();
    const src = path.join(t.home, 'src');
    const pattern = fixPlugin(t, src, '1.0.0', "console.log('fixed');\n");
    const first = await adi(['plugin', 'install', src], t.env, { input: 'y\n' });
    assert.equal(first.code, 0, first.stdout + first.stderr);
    // The prompt says in words that this runs the plugin's own code as root.
    assert.match(
      first.stdout,
      new RegExp(
        ` {2}- ${pattern.replaceAll('/', '\\/').replaceAll('.', '\\.')}\\n[\\s\\S]*WARNING: this runs plugin-shipped code as root: node is a shell or interpreter`,
      ),
    );
    const approved = readApproval(t.paths, 'fix');
    assert.match(approved?.files_digest ?? '', /^[0-9a-f]{64}$/);
    assert.match(approved?.tree_digest ?? '', /^[0-9a-f]{64}$/);

    assert.equal((await adi(['daemon', 'start'], t.env)).code, 0);
    const start = await adi(['daemon', 'start', 'fix-svc'], t.env);
    assert.equal(start.code, 0, start.stdout + start.stderr);
    await waitFor(
      async () => (await listServices(t.env)).find((s) => s.name === 'fix-svc')?.state === 'running',
      30_000,
      'fix-svc to run',
    );
    const pid = (await services(t)).find((s) => s.name === 'fix-svc')?.pid;

    // v1.0.1: same pattern, a fix.js that would run `id` as root.
    fixPlugin(t, src, '1.0.1', "require('child_process').execSync('id > /tmp/adi-fix-pwned');\n");
    const upd = await adi(['plugin', 'install', src], t.env);
    assert.equal(upd.code, 1, upd.stdout + upd.stderr);
    assert.match(
      upd.stdout,
      /Changed since your approval of fix 1\.0\.0: the version \(1\.0\.0 -> 1\.0\.1\); the plugin's own files changed\. Root access needs your approval again\./,
    );
    assert.match(upd.stdout, /Allow\? \[y\/N\] \nNo answer on stdin/);
    assert.match(upd.stderr, /Not updated: root access was not approved\. fix 1\.0\.0 stays installed/);
    assert.equal(fs.readFileSync(path.join(t.paths.pluginsDir, 'fix', 'fix.js'), 'utf8'), "console.log('fixed');\n");
    assert.deepEqual(readApproval(t.paths, 'fix'), approved);
    const svc = (await services(t)).find((s) => s.name === 'fix-svc');
    assert.equal(svc?.state, 'running');
    assert.equal(svc?.pid, pid, 'the old version keeps running, not restarted');

    // Same version, changed file: still asks (the digest, not the version, decides).
    fixPlugin(t, src, '1.0.0', "console.log('fixed, differently');\n");
    const same = await adi(['plugin', 'install', src], t.env);
    assert.equal(same.code, 1, same.stdout + same.stderr);
    assert.match(same.stdout, /Changed since your approval of fix 1\.0\.0: the plugin's own files changed\./);
    assert.doesNotMatch(same.stdout, /the version/);
  });

  void it('the prompt names plugin-shipped code in words: interpreters, launchers, files in the plugin folder; not exact binaries', () => {
    const dir = '/var/lib/adi-daemon/plugins/adi/p';
    const warn = (pattern: string): string =>
      approvalLines([pattern], (cmd) => (cmd.startsWith('/') ? cmd : `/usr/bin/${cmd}`), dir)
        .filter((l) => l.includes('WARNING'))
        .join('\n');
    for (const p of [
      'sh -c *',
      '/bin/bash /x.sh',
      'python3.11 -c *',
      'perl -e *',
      'env FOO=1 /usr/bin/id',
      'dash',
      'ruby x.rb',
    ]) {
      assert.match(warn(p), /WARNING: this runs plugin-shipped code as root: \S+ is a shell or interpreter/, p);
    }
    assert.match(
      warn(`/usr/bin/install -m 0755 ${dir}/tool /usr/local/bin/tool`),
      new RegExp(
        `WARNING: this runs plugin-shipped code as root: ${dir}/tool is a file inside the plugin's own folder`,
      ),
    );
    assert.match(warn(`${dir}/bin/helper --fix`), /is a file inside the plugin's own folder/);
    assert.equal(warn('/usr/sbin/iptables -t nat -L -n'), '');
    assert.equal(warn('/usr/bin/id -u'), '');
  });

  void it('the SudoRun check: the installed files must still match the approved digest', async () => {
    const t = home();
    const src = path.join(t.home, 'src');
    fixPlugin(t, src, '1.0.0', "console.log('fixed');\n");
    assert.equal((await adi(['plugin', 'install', src, '--yes'], t.env)).code, 0);
    assert.equal(await approvedFilesProblem(t.paths, 'fix', false), null);
    assert.equal(await approvedFilesProblem(t.paths, 'fix', false), null, 'cached: still matches');
    const file = path.join(t.paths.pluginsDir, 'fix', 'fix.js');
    fs.writeFileSync(file, "console.log('edited');\n");
    assert.match(
      (await approvedFilesProblem(t.paths, 'fix', false)) ?? '',
      /The files of plugin fix in .* are no longer those approved on .*; reinstall it/,
    );
    fs.writeFileSync(file, "console.log('fixed');\n");
    assert.equal(await approvedFilesProblem(t.paths, 'fix', false), null, 'back to the approved content');
    // A new file (a dependency dropped in by hand) counts too.
    fs.writeFileSync(path.join(t.paths.pluginsDir, 'fix', 'node_modules', 'extra.js'), '');
    assert.match((await approvedFilesProblem(t.paths, 'fix', false)) ?? '', /no longer those approved/);
    // An approval from before digests were recorded is not trusted.
    const a = readApproval(t.paths, 'fix');
    assert.ok(a !== null);
    fs.writeFileSync(
      path.join(t.paths.dataDir, 'approvals', 'fix.json'),
      JSON.stringify({ plugin: 'fix', version: a.version, patterns: a.patterns, approved_at: a.approved_at }),
    );
    assert.match((await approvedFilesProblem(t.paths, 'fix', false)) ?? '', /recorded without a digest of its files/);
  });

  void it('C1 controls, bidi overrides and zero-width characters are refused at install, naming the field', async () => {
    const t = home();
    const cases: Array<[Record<string, unknown>, string]> = [
      [
        { service: { name: 'c-svc', command: 'serve', privileged_commands: ['/usr/bin/id -u \u009b3A\u009bJ'] } },
        'adi.service.privileged_commands[0]',
      ],
      [
        {
          service: { name: 'c-svc', command: 'serve', privileged_commands: ['/usr/bin/id -u', '/usr/bin/id \u202e-g'] },
        },
        'adi.service.privileged_commands[1]',
      ],
      [
        { service: { name: 'c-svc', command: 'serve', privileged_commands: ['/usr/bin/id\u200b -u'] } },
        'adi.service.privileged_commands[0]',
      ],
      [{ extra: { description: 'nice \u2066plugin' } }, 'description'],
      [{ version: '1.0.0\u200d' }, 'version'],
      [{ service: { name: 'c-svc', command: 'serve\u0085' } }, 'adi.service.command'],
      [{ service: { name: 'c-svc', command: 'serve', args: ['\ufeffx'] } }, 'adi.service.args[0]'],
    ];
    for (const [spec, field] of cases) {
      const src = writePlugin(path.join(t.home, `c${field.replace(/\W/g, '')}`), { name: 'ctl', ...spec });
      const r = await adi(['plugin', 'install', src, '--yes'], t.env);
      assert.equal(r.code, 1, `${field}: ${r.stdout}${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(
          `field "${field.replace(/[.[\]]/g, '\\$&')}": it contains the (C1 control character|bidirectional control|invisible character|control character) U\\+`,
        ),
        field,
      );
      assert.doesNotMatch(r.stdout, /Allow\?/);
      assert.deepEqual(fs.existsSync(t.paths.pluginsDir) ? fs.readdirSync(t.paths.pluginsDir) : [], []);
    }
  });

  void it('a service name has one owner: services.toml or another plugin is named; list shows conflicts', async () => {
    const t = home();
    fs.mkdirSync(t.paths.configDir, { recursive: true });
    fs.writeFileSync(t.paths.servicesFile, '[web]\ncommand = "/bin/sleep"\nargs = ["100"]\n');
    const a = writePlugin(path.join(t.home, 'a'), { name: 'plug-a', service: { name: 'web', command: 'serve' } });
    const r1 = await adi(['plugin', 'install', a], t.env);
    assert.equal(r1.code, 1, r1.stdout + r1.stderr);
    assert.match(
      r1.stderr,
      new RegExp(
        `plug-a defines the service "web", which services\\.toml \\(${t.paths.servicesFile.replaceAll('/', '\\/')}\\) already defines`,
      ),
    );

    const b = writePlugin(path.join(t.home, 'b'), {
      name: 'plug-b',
      service: { name: 'shared-svc', command: 'serve' },
    });
    assert.equal((await adi(['plugin', 'install', b], t.env)).code, 0);
    const c = writePlugin(path.join(t.home, 'c'), {
      name: 'plug-c',
      service: { name: 'shared-svc', command: 'serve' },
    });
    const r2 = await adi(['plugin', 'install', c], t.env);
    assert.equal(r2.code, 1, r2.stdout + r2.stderr);
    assert.match(r2.stderr, /plug-c defines the service "shared-svc", which plugin plug-b already defines/);
    // Reinstalling the owner itself is fine.
    assert.equal((await adi(['plugin', 'install', b], t.env)).code, 0);

    // A conflict made afterwards (services.toml edited) shows in the list.
    fs.appendFileSync(t.paths.servicesFile, '[shared-svc]\ncommand = "/bin/sleep"\n');
    const list = await adi(['plugin', 'list'], t.env);
    assert.match(list.stdout, /plug-b .*CONFLICT: service "shared-svc" is also defined by services\.toml/);
    const json = JSON.parse((await adi(['plugin', 'list', '--json'], t.env)).stdout) as Array<{
      name: string;
      conflicts: string[];
    }>;
    assert.deepEqual(json.find((p) => p.name === 'plug-b')?.conflicts, [`services.toml (${t.paths.servicesFile})`]);
  });
});
