// Names have owners: a service name belongs to one source (the services file, one plugin, or an ad-hoc
// StartService). When several define it, the others' definitions are not loaded and the conflict is
// kept for ListServices and Ping, not only logged. Between plugins, the plugin that owns a name in the
// running daemon (or, after a restart, the one recorded in service-owners.json) keeps it; with no
// owner none gets it, whatever the names' order (a plugin picks its own name, so "first by name wins"
// would let it pick to win).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { MemoryLogger } from '../../src/core/logger.js';
import { validateServiceConfig } from '../../src/protocol/config-schema.js';
import { ServiceManager } from '../../src/services/manager.js';
import { loadSources, type ServiceDefinition, type ServiceSource } from '../../src/services/registry.js';
import { makeEnv, type TestEnv, adhoc } from './helpers.js';

/** A definition as the services file gives it: no plugin. */
function withoutPlugin(d: ServiceDefinition): ServiceDefinition {
  const { plugin: _plugin, ...rest } = d;
  return rest;
}

function def(name: string, plugin: string, args: string[] = ['1000']): ServiceDefinition {
  const config = validateServiceConfig({ command: '/bin/sleep', args }).config;
  assert.ok(config !== null);
  return { name, source: 'plugin', config, auto_start: false, origin: `plugin ${plugin}`, plugin };
}

/** A plugin source whose definitions the test changes between loads (as installs and hand copies do). */
function plugins(initial: ServiceDefinition[]): ServiceSource & { defs: ServiceDefinition[] } {
  const source = {
    kind: 'plugin' as const,
    defs: initial,
    load: () => Promise.resolve({ definitions: [...source.defs], errors: [] }),
  };
  return source;
}

void describe('loadSources: who owns a name', () => {
  void it('the services file owns a name a plugin also defines; the plugin definition is not loaded', async () => {
    const file: ServiceSource = {
      kind: 'file',
      load: () =>
        Promise.resolve({
          definitions: [{ ...withoutPlugin(def('web', 'x')), source: 'file', origin: '/cfg/services.toml' }],
          errors: [],
        }),
    };
    for (const order of [
      [file, plugins([def('web', 'aaa')])],
      [plugins([def('web', 'aaa')]), file],
    ]) {
      const snap = await loadSources(order);
      assert.equal(snap.definitions.get('web')?.source, 'file');
      assert.equal(snap.conflicts.length, 1);
      assert.deepEqual(
        { ...snap.conflicts[0], message: '' },
        { name: 'web', owner: '/cfg/services.toml', ignored: ['plugin aaa'], message: '' },
      );
      assert.match(
        snap.conflicts[0]?.message ?? '',
        /^service "web" belongs to \/cfg\/services.toml; the definition in plugin aaa is not loaded: the services file comes before plugins/,
      );
      assert.deepEqual(snap.errors, [], 'a conflict is not an error in a definition');
    }
  });

  void it('two plugins, nobody owning the name yet: neither is loaded, in either order', async () => {
    for (const order of [
      [def('web', 'aaa'), def('web', 'zzz')],
      [def('web', 'zzz'), def('web', 'aaa')],
    ]) {
      const snap = await loadSources([plugins(order)]);
      assert.equal(snap.definitions.has('web'), false);
      assert.equal(snap.conflicts[0]?.owner, null);
      assert.match(
        snap.conflicts[0]?.message ?? '',
        /service "web": defined by plugin (aaa|zzz) and plugin (aaa|zzz), and none of these definitions is loaded/,
      );
    }
  });

  void it("two plugins: the current owner keeps the name, whatever the order; an unrelated current owner doesn't decide", async () => {
    const both = plugins([def('web', 'aaa'), def('web', 'zzz')]);
    const snap = await loadSources([both], (name) =>
      name === 'web' ? { origin: 'plugin zzz', sourceIndex: 0 } : undefined,
    );
    assert.equal(snap.definitions.get('web')?.plugin, 'zzz');
    assert.match(
      snap.conflicts[0]?.message ?? '',
      /^service "web" belongs to plugin zzz; the definition in plugin aaa is not loaded: plugin zzz owned it first/,
    );
    const adhoc = await loadSources([both], () => ({ origin: 'StartService', sourceIndex: null }));
    assert.equal(adhoc.definitions.has('web'), false);
  });

  void it("a name whose owner's source cannot be read this time stays its own (a TOML typo hands nothing to a plugin)", async () => {
    const broken: ServiceSource = {
      kind: 'file',
      load: () =>
        Promise.resolve({ definitions: [], errors: ['/cfg/services.toml:3:1: TOML syntax error'], failed: true }),
    };
    const snap = await loadSources([broken, plugins([def('web', 'aaa')])], () => ({
      origin: '/cfg/services.toml',
      sourceIndex: 0,
    }));
    assert.equal(snap.definitions.has('web'), false);
    assert.match(
      snap.conflicts[0]?.message ?? '',
      /belongs to \/cfg\/services.toml; the definition in plugin aaa is not loaded: \/cfg\/services.toml could not be read this time/,
    );
  });

  void it("a name whose owner now defines it invalidly stays its own; another origin's invalid definition does not hold it", async () => {
    const owner = (origin: string): ServiceSource => ({
      kind: 'plugin',
      load: () =>
        Promise.resolve({
          definitions: [],
          errors: [`${origin}: its manifest is broken`],
          invalid: [{ name: 'web', origin, errors: [`${origin}: its manifest is broken`] }],
        }),
    });
    const held = () => ({ origin: 'plugin aaa', sourceIndex: 0 });
    const kept = await loadSources([owner('plugin aaa'), plugins([def('web', 'zzz')])], held);
    assert.equal(kept.definitions.has('web'), false);
    assert.deepEqual(kept.invalid.get('web'), ['plugin aaa: its manifest is broken']);
    assert.match(
      kept.conflicts[0]?.message ?? '',
      /^service "web" belongs to plugin aaa; the definition in plugin zzz is not loaded: the new definition in plugin aaa is invalid, and the name stays with it/,
    );
    // Only the owner's own invalid definition holds the name.
    const taken = await loadSources([owner('plugin other'), plugins([def('web', 'zzz')])], held);
    assert.equal(taken.definitions.get('web')?.plugin, 'zzz');
  });
});

let env: TestEnv | null = null;
void afterEach(async () => {
  await env?.cleanup();
  env = null;
});

void describe('the manager: conflicts at reload, in listings, and for ad-hoc names', () => {
  void it("a plugin copied in later with another plugin's service name neither takes nor stops it", async () => {
    const source = plugins([def('web', 'zeta')]);
    env = makeEnv({ sources: [source] });
    const { manager } = env;
    await manager.init();
    const running = await manager.start('web');
    assert.ok(running.pid !== null);
    // "aaa" sorts first: under the old rule (first by name wins) it took the name and its command ran.
    source.defs = [def('web', 'aaa', ['999']), def('web', 'zeta')];
    const r = await manager.reload();
    assert.deepEqual(r.unchanged, ['web']);
    const info = manager.get('web');
    assert.equal(info?.pid, running.pid, 'the same process');
    assert.equal(info?.plugin, 'zeta');
    assert.equal(manager.definition('web')?.plugin, 'zeta');
    assert.match(
      info?.conflicts?.join('\n') ?? '',
      /belongs to plugin zeta; the definition in plugin aaa is not loaded/,
    );
    assert.deepEqual(manager.list().find((s) => s.name === 'web')?.conflicts, info?.conflicts);
    assert.deepEqual(manager.conflicts(), info?.conflicts);
    assert.match(r.conflicts.join('\n'), /plugin aaa is not loaded/);
    assert.deepEqual(r.errors, [], 'a conflict is not an error in a definition');

    // Resolved (aaa removed): the conflict is gone from the listing.
    source.defs = [def('web', 'zeta')];
    await manager.reload();
    assert.equal(manager.get('web')?.conflicts, undefined);
    assert.deepEqual(manager.conflicts(), []);
  });

  void it("a service is kept on another origin's invalid definition of its name only if that origin is its own", async () => {
    // zeta owns web; aaa defines it too (not loaded), then breaks; then zeta is uninstalled.
    let broken = false;
    const source = {
      kind: 'plugin' as const,
      defs: [def('web', 'zeta')],
      load: () =>
        Promise.resolve({
          definitions: [...source.defs],
          errors: broken ? ['plugin aaa: its manifest is broken'] : [],
          invalid: broken
            ? [{ name: 'web', origin: 'plugin aaa', errors: ['plugin aaa: its manifest is broken'] }]
            : [],
        }),
    };
    env = makeEnv({ sources: [source] });
    await env.manager.init();
    assert.equal(env.manager.get('web')?.plugin, 'zeta');
    source.defs = [def('web', 'zeta'), def('web', 'aaa')];
    await env.manager.reload();
    assert.equal(env.manager.get('web')?.plugin, 'zeta');
    broken = true;
    source.defs = [];
    const r = await env.manager.reload();
    assert.deepEqual(r.kept, [], "aaa's broken manifest does not keep zeta's service");
    assert.deepEqual(r.removed, ['web']);
  });

  void it('the owner is remembered across restarts (service-owners.json): a restarted daemon gives it the name again', async () => {
    const source = plugins([def('web', 'zeta')]);
    env = makeEnv({ sources: [source] });
    await env.manager.init();
    await env.manager.stopAll();
    const record = JSON.parse(fs.readFileSync(path.join(env.paths.dataDir, 'service-owners.json'), 'utf8')) as unknown;
    assert.deepEqual(record, { version: 1, owners: { web: 'plugin zeta' } });
    assert.equal(fs.statSync(path.join(env.paths.dataDir, 'service-owners.json')).mode & 0o777, 0o600);

    // The next daemon of the same data dir finds "aaa" copied in beside it.
    source.defs = [def('web', 'aaa'), def('web', 'zeta')];
    const next = new ServiceManager({
      paths: env.paths,
      log: new MemoryLogger(),
      env: { ...process.env, ADI_TEST_TAG: env.tag },
      home: env.dir,
      sources: [source],
    });
    try {
      await next.init();
      assert.equal(next.get('web')?.plugin, 'zeta');
      assert.match(next.conflicts()[0] ?? '', /belongs to plugin zeta; the definition in plugin aaa is not loaded/);
      // zeta is uninstalled: the name is free, and its record goes.
      source.defs = [def('other', 'aaa')];
      await next.reload();
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(env.paths.dataDir, 'service-owners.json'), 'utf8')), {
        version: 1,
        owners: { other: 'plugin aaa' },
      });
    } finally {
      await next.stopAll();
    }
  });

  void it('a name nobody got is listed as a conflict, and an ad-hoc StartService may not take it', async () => {
    env = makeEnv({ sources: [plugins([def('web', 'aaa'), def('web', 'zzz'), def('other', 'ooo')])] });
    const { manager } = env;
    await manager.init();
    assert.deepEqual(
      manager.list().map((s) => s.name),
      ['other'],
    );
    assert.equal(manager.conflicts().length, 1);
    assert.match(manager.conflicts()[0] ?? '', /service "web": defined by plugin aaa and plugin zzz/);
    assert.ok(
      env.log.lines.some((l) => l.includes(manager.conflicts()[0] ?? '?')),
      'and in the daemon log',
    );
    await assert.rejects(
      manager.start('web', adhoc({ command: '/bin/sleep', args: ['1000'] })),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SERVICE_EXISTS');
        assert.match(err.message, /claimed by plugin aaa and plugin zzz/);
        return true;
      },
    );
    // A name owned by a plugin is refused too (it always was), naming the owner.
    await assert.rejects(manager.start('other', adhoc({ command: '/bin/true' })), /defined in plugin ooo/);
    assert.deepEqual(
      manager.list().map((s) => s.name),
      ['other'],
      'nothing was added',
    );
  });
});
