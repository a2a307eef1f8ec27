// The plugin manifest (package.json "adi"): every bad field refused with its name and the reason; the
// service a good one defines; where plugins live (pluginsRoot) and the install prompt's text.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AdiError } from '../../src/core/errors.js';
import { resolvePaths } from '../../src/core/paths.js';
import { pluginsRoot } from '../../src/plugins/location.js';
import { sharedPluginsDir } from '../../src/system/privilege.js';
import { normalizedServiceConfig, parseManifest, readManifest } from '../../src/plugins/manifest.js';
import { approvalLines, isYes, samePatterns } from '../../src/plugins/prompt.js';
import { PluginSource } from '../../src/plugins/source.js';
import { EXAMPLE, writePlugin } from './util.js';

function base(
  service: Record<string, unknown> | undefined,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name: 'p1',
    version: '1.0.0',
    bin: 'cli.js',
    ...(service !== undefined ? { adi: { service } } : {}),
    ...extra,
  };
}

function refused(pkg: unknown): string {
  try {
    parseManifest(pkg, '/x/package.json');
  } catch (err) {
    assert.ok(err instanceof AdiError, String(err));
    assert.equal(err.code, 'BAD_MANIFEST');
    return err.message;
  }
  assert.fail('the manifest was accepted');
}

void describe('plugin manifest', () => {
  void it('refuses a service without command, naming the field', () => {
    assert.match(refused(base({ name: 'svc' })), /field "adi\.service\.command": is required/);
  });

  void it('refuses names like ../x (service and package)', () => {
    assert.match(
      refused(base({ name: '../x', command: 'serve' })),
      /field "adi\.service\.name": "\.\.\/x" is not a valid service name/,
    );
    assert.match(
      refused({ ...base({ name: 'ok', command: 'serve' }), name: '../x' }),
      /field "name": "\.\.\/x" is not a valid plugin name/,
    );
    assert.match(refused({ ...base(undefined), name: '@scope/x' }), /field "name": scoped package names/);
  });

  void it('refuses privileged_commands that is not an array of strings, or a pattern compilePattern refuses', () => {
    assert.match(
      refused(base({ name: 's', command: 'serve', privileged_commands: 'id -u' })),
      /field "adi\.service\.privileged_commands": expected an array of strings/,
    );
    assert.match(
      refused(base({ name: 's', command: 'serve', privileged_commands: ['id -u', 7] })),
      /field "adi\.service\.privileged_commands\[1\]": expected a string, got the number 7/,
    );
    assert.match(
      refused(base({ name: 's', command: 'serve', privileged_commands: ['*'] })),
      /field "adi\.service\.privileged_commands\[0\]": Invalid privileged command pattern "\*": it would allow every command/,
    );
    assert.match(
      refused(base({ name: 's', command: 'serve', privileged_commands: ['./run-me -x'] })),
      /privileged_commands\[0\]".*relative path/,
    );
    assert.match(
      refused(base({ name: 's', command: 'serve', privileged_commands: ['/no/such/program-adi'] })),
      /privileged_commands\[0\]"/,
    );
  });

  void it('checks the service fields like services.toml, and refuses what a plugin may not set', () => {
    const msg = refused(
      base({
        name: 's',
        command: 'serve',
        max_restarts: 'three',
        liveness: { tcp: 1, http: 'http://x' },
        privileged: true,
        auto_start: true,
        colour: 'red',
        args: ['a', 1],
      }),
    );
    assert.match(msg, /field "adi\.service\.max_restarts": expected an integer/);
    assert.match(msg, /field "adi\.service\.liveness": has tcp and http/);
    assert.match(msg, /field "adi\.service\.privileged": a plugin service never runs privileged/);
    assert.match(msg, /field "adi\.service\.auto_start": plugin services start on demand/);
    assert.match(msg, /field "adi\.service\.colour": unknown field/);
    assert.match(msg, /field "adi\.service\.args\[1\]": expected a string/);
  });

  void it('needs a bin inside the package when there is a service; adi-daemon only as a peer', () => {
    assert.match(
      refused({ name: 'p1', version: '1.0.0', adi: { service: { name: 's', command: 'serve' } } }),
      /field "bin": is required/,
    );
    assert.match(
      refused(base({ name: 's', command: 'serve' }, { bin: '../outside.js' })),
      /field "bin": "\.\.\/outside\.js" must be a path inside the package/,
    );
    assert.match(
      refused(base({ name: 's', command: 'serve' }, { bin: { a: 'a.js', b: 'b.js' } })),
      /field "bin": has 2 entries and none is named like the package/,
    );
    assert.match(
      refused(base({ name: 's', command: 'serve' }, { dependencies: { 'adi-daemon': '^0.1.0' } })),
      /field "dependencies\.adi-daemon": adi-daemon must be a peerDependency/,
    );
    assert.match(refused({ name: 'p1', adi: 3 }), /field "version": is required[\s\S]*field "adi": expected an object/);
  });

  void it('a valid manifest defines `<node> <dir>/<bin> <command> [args]` in the plugin folder, never privileged', () => {
    const m = parseManifest(
      base(
        {
          name: 'svc',
          command: 'serve',
          args: ['--port', '7000'],
          restart_on_failure: true,
          max_restarts: 3,
          privileged_commands: ['/usr/bin/id -u'],
          readiness: { tcp: 7000 },
          stop_timeout: 2,
          log_max_bytes: 65536,
          ready_notify: false,
        },
        { bin: { p1: './bin/../cli.js', other: 'x.js' }, dependencies: { left: '1' } },
      ),
      '/x/package.json',
    );
    assert.equal(m.bin, 'cli.js');
    assert.equal(m.hasDependencies, true);
    assert.deepEqual(m.service?.privileged_commands, ['/usr/bin/id -u']);
    const config = normalizedServiceConfig(m, '/plugins/p1', '/usr/bin/node');
    assert.equal(config.command, '/usr/bin/node');
    assert.deepEqual(config.args, ['/plugins/p1/cli.js', 'serve', '--port', '7000']);
    assert.equal(config.working_dir, '/plugins/p1');
    assert.equal(config.privileged, false);
    assert.equal(config.max_restarts, 3);
    assert.equal(config.stop_timeout, 2);
    assert.equal(config.log_max_bytes, 65536);
    assert.deepEqual(config.readiness, { tcp: 7000, interval_secs: 1, timeout_secs: 5, failure_threshold: 3 });
  });

  void it('reads the example plugin', () => {
    const m = readManifest(EXAMPLE);
    assert.equal(m.name, 'hello-plugin');
    assert.equal(m.bin, 'cli.js');
    assert.equal(m.service?.name, 'hello');
    assert.equal(m.service?.command, 'serve');
    assert.equal(m.hasDependencies, false);
  });
});

void describe('plugins location and source', () => {
  const paths = resolvePaths({
    env: { XDG_DATA_HOME: '/home/alice/.local/share', ADI_USER: 'adi' },
    home: '/home/alice',
  });

  void it('without separation: <data dir>/plugins; with it: /var/lib/adi-daemon/plugins/<ADI_USER>, shared', () => {
    assert.deepEqual(
      { ...pluginsRoot(paths, { separation: () => false }), reason: '' },
      { dir: '/home/alice/.local/share/adi/plugins', shared: false, reason: '' },
    );
    const shared = pluginsRoot(paths, { separation: () => true });
    assert.equal(shared.dir, '/var/lib/adi-daemon/plugins/adi');
    assert.equal(shared.shared, true);
    assert.equal(sharedPluginsDir('adi-test', '/state'), '/state/plugins/adi-test');
  });

  void it('the source defines one stopped-until-started service per plugin with one, tagged with the plugin', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-plsrc-'));
    try {
      const p = resolvePaths({ env: { XDG_DATA_HOME: dir }, home: dir });
      writePlugin(path.join(p.pluginsDir, 'alpha'), {
        name: 'alpha',
        service: { name: 'alpha-svc', command: 'serve', max_restarts: 2 },
      });
      writePlugin(path.join(p.pluginsDir, 'nosvc'), { name: 'nosvc', service: null, bin: null });
      writePlugin(path.join(p.pluginsDir, 'broken'), { name: 'broken', service: { name: 'b' } });
      writePlugin(path.join(p.pluginsDir, 'renamed'), { name: 'other-name' });
      fs.mkdirSync(path.join(p.pluginsDir, '.runtime'));
      const result = await new PluginSource(p, { separation: () => false, node: '/usr/bin/node' }).load();
      assert.equal(result.failed, undefined);
      assert.deepEqual(
        result.definitions.map((d) => [d.name, d.source, d.plugin, d.auto_start, d.origin]),
        [['alpha-svc', 'plugin', 'alpha', false, 'plugin alpha']],
      );
      const def = result.definitions[0];
      assert.deepEqual(def?.config.args, [path.join(p.pluginsDir, 'alpha', 'cli.js'), 'serve']);
      assert.equal(def?.config.max_restarts, 2);
      const errors = result.errors.join('\n');
      assert.match(errors, /plugin broken: [\s\S]*field "adi\.service\.command": is required/);
      assert.match(errors, /plugin renamed: its package\.json names it "other-name"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  void it('a plugin whose manifest breaks later still names its service, so the service keeps its name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-plsrc-'));
    try {
      const p = resolvePaths({ env: { XDG_DATA_HOME: dir }, home: dir });
      const alpha = path.join(p.pluginsDir, 'alpha');
      writePlugin(alpha, { name: 'alpha', service: { name: 'alpha-svc', command: 'serve' } });
      const source = new PluginSource(p, { separation: () => false, node: '/usr/bin/node' });
      assert.deepEqual(
        (await source.load()).definitions.map((d) => d.name),
        ['alpha-svc'],
      );
      writePlugin(alpha, { name: 'alpha', service: { name: 'alpha-svc' } });
      const broken = await source.load();
      assert.deepEqual(broken.definitions, []);
      assert.deepEqual(
        broken.invalid?.map((b) => [b.name, b.origin]),
        [['alpha-svc', 'plugin alpha']],
      );
      assert.match(broken.invalid?.[0]?.errors.join('\n') ?? '', /field "adi\.service\.command": is required/);
      // A daemon started with the manifest already broken does not know the name.
      const fresh = await new PluginSource(p, { separation: () => false, node: '/usr/bin/node' }).load();
      assert.deepEqual(fresh.invalid, []);
      // A manifest that renames the service and is invalid: the running one keeps its old name.
      writePlugin(alpha, { name: 'alpha', service: { name: 'alpha-svc', command: 'serve' } });
      await source.load();
      writePlugin(alpha, {
        name: 'alpha',
        service: { name: 'alpha-new', command: 'serve', max_restarts: 5000 },
      });
      const renamed = await source.load();
      assert.deepEqual(
        renamed.invalid?.map((b) => b.name),
        ['alpha-svc'],
      );
      // Once uninstalled, the plugin's name is forgotten.
      fs.rmSync(alpha, { recursive: true });
      assert.deepEqual((await source.load()).invalid, []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe('install prompt', () => {
  void it("shows each pattern, what it grants and what a trailing * allows, in the seed's words", () => {
    const lines = approvalLines(['/usr/bin/id -u', '/usr/bin/id *'], (c) => c);
    assert.equal(lines[0], 'This plugin requests root access for:');
    assert.ok(lines.includes('  - /usr/bin/id -u'));
    assert.ok(lines.includes('  - /usr/bin/id *'));
    assert.match(lines.join('\n'), /the final \* lets the caller add ANY further arguments/);
  });

  void it('only y / yes approve; patterns compare as exact strings', () => {
    for (const a of ['y', 'Y', 'yes', ' YES ']) assert.equal(isYes(a), true, a);
    for (const a of ['', 'n', 'no', 'yy', 'ja', null]) assert.equal(isYes(a), false, String(a));
    assert.equal(samePatterns(['a -x', 'b'], ['b', 'a -x']), true);
    assert.equal(samePatterns(['a -x'], ['a  -x']), false);
    assert.equal(samePatterns(['a'], ['a', 'b']), false);
  });
});
