// services.toml: loading, per-entry errors (file, service, field), syntax errors, auto_start, and
// reload (unchanged keeps its pid, changed restarts, removed stops, ad-hoc survives).

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { loadSources, type ServiceSource } from '../../src/services/registry.js';
import { FileSource, parseServicesToml } from '../../src/services/sources/file-source.js';
import { isAlive, makeEnv, taggedPids, waitState, type TestEnv, adhoc } from './helpers.js';
import { waitFor } from '../helpers/env.js';

let env: TestEnv | null = null;
function setup(sources?: ServiceSource[]): TestEnv {
  env = makeEnv(sources !== undefined ? { sources } : {});
  return env;
}
void afterEach(async () => {
  await env?.cleanup();
  env = null;
});

void describe('services file', () => {
  void it('reports each invalid entry with file, service and field, and loads the valid ones', () => {
    const file = '/cfg/services.toml';
    const result = parseServicesToml(
      `
scalar = 1

[good]
command = "/bin/sleep"
args = ["1000"]
env = { A = "1" }
auto_start = true
stop_timeout = 2.5
liveness = { tcp = 8080, interval_secs = 5 }
log_max_bytes = 1048576

[typo]
command = "/bin/true"
max_restrats = 3

[types]
command = "/bin/true"
max_restarts = "three"
env = { PORT = 8080 }
readiness = { tcp = 1, http = "http://x" }

[nocmd]
args = []

["Bad Name"]
command = "/bin/true"
`,
      file,
    );
    assert.equal(result.failed, undefined);
    assert.deepEqual(
      result.definitions.map((d) => d.name),
      ['good'],
    );
    const good = result.definitions[0];
    assert.ok(good);
    assert.equal(good.auto_start, true);
    assert.equal(good.source, 'file');
    assert.equal(good.config.stop_timeout, 2.5);
    assert.equal(good.config.max_restarts, 5);
    assert.equal(good.config.restart_on_failure, true);
    assert.deepEqual(good.config.liveness, { tcp: 8080, interval_secs: 5, timeout_secs: 5, failure_threshold: 3 });
    const errors = result.errors.join('\n');
    assert.match(errors, /^\/cfg\/services.toml: service "typo": field "max_restrats": unknown field/m);
    assert.match(
      errors,
      /^\/cfg\/services.toml: service "types": field "max_restarts": expected an integer from 0 to 1000, got a string "three"$/m,
    );
    assert.match(
      errors,
      /^\/cfg\/services.toml: service "types": field "env.PORT": expected a string, got the number 8080 \(quote it: PORT = "8080"\)$/m,
    );
    assert.match(
      errors,
      /^\/cfg\/services.toml: service "types": field "readiness": has tcp and http: give exactly one probe$/m,
    );
    assert.match(errors, /^\/cfg\/services.toml: service "nocmd": field "command": is required/m);
    assert.match(errors, /^\/cfg\/services.toml: service "Bad Name": Invalid service name/m);
    assert.match(errors, /^\/cfg\/services.toml: service "scalar": expected a table \[scalar\]/m);
  });

  void it('a syntax error names file and line and loads nothing; a missing file is no services', async () => {
    const result = parseServicesToml('[a]\ncommand = "/bin/true"\n[b\ncommand = 1\n', '/cfg/services.toml');
    assert.equal(result.failed, true);
    assert.deepEqual(result.definitions, []);
    assert.equal(result.errors.length, 1);
    assert.match(result.errors[0] ?? '', /^\/cfg\/services.toml:3:\d+: TOML syntax error/);

    const missing = await new FileSource('/no/such/dir/services.toml').load();
    assert.deepEqual(missing, { definitions: [], errors: [] });
  });

  void it('merges sources: a name two plugins define goes to neither, whatever their order; a thrown source is reported', async () => {
    const def = (origin: string) => ({
      name: 'dup',
      source: 'plugin' as const,
      config: parseServicesToml('[x]\ncommand="/bin/true"', 'f').definitions[0]!.config,
      auto_start: false,
      origin,
    });
    const a: ServiceSource = { kind: 'plugin', load: async () => ({ definitions: [def('plugin a')], errors: [] }) };
    const b: ServiceSource = { kind: 'plugin', load: async () => ({ definitions: [def('plugin b')], errors: [] }) };
    const broken: ServiceSource = {
      kind: 'plugin',
      load: async () => {
        throw new Error('boom');
      },
    };
    const snap = await loadSources([a, b, broken]);
    assert.equal(snap.definitions.get('dup'), undefined);
    assert.match(
      snap.conflicts[0]?.message ?? '',
      /service "dup": defined by plugin a and plugin b, and none of these definitions is loaded/,
    );
    assert.equal((await loadSources([b, a])).definitions.get('dup'), undefined);
    assert.match(snap.errors.join('\n'), /plugin source: boom/);
    assert.deepEqual([...snap.failedSources], [2]);
  });

  void it('init starts the auto_start services, skips invalid entries and logs them', async () => {
    const { manager, log, writeServices } = setup();
    writeServices(`
[one]
command = "/bin/sleep"
args = ["1000"]
auto_start = true

[two]
command = "/bin/sleep"
args = ["1000"]
auto_start = true

[manual]
command = "/bin/sleep"
args = ["1000"]

[broken]
command = "/bin/sleep"
auto_start = "yes"
`);
    await manager.init();
    const list = manager.list();
    assert.deepEqual(
      list.map((s) => `${s.name}:${s.state}:${s.source}`),
      ['manual:stopped:file', 'one:running:file', 'two:running:file'],
    );
    assert.ok(
      log.lines.some((l) =>
        /WARN .*services.toml: service "broken": field "auto_start": expected true or false/.test(l),
      ),
      log.lines.join('\n'),
    );
    const started = await manager.start('manual');
    assert.equal(started.state, 'running');
  });

  void it('a missing auto_start command marks that service failed and the others still run', async () => {
    const { manager, writeServices } = setup();
    writeServices(
      '[gone]\ncommand = "/no/such/bin"\nauto_start = true\n[ok]\ncommand = "/bin/sleep"\nargs = ["1000"]\nauto_start = true\n',
    );
    await manager.init();
    assert.equal(manager.get('gone')?.state, 'failed');
    assert.match(manager.get('gone')?.last_error ?? '', /ENOENT/);
    assert.equal(manager.get('ok')?.state, 'running');
  });

  void it('reload: unchanged keeps its pid, changed restarts, removed stops, added auto_start starts, ad-hoc stays', async () => {
    const { manager, writeServices, tag } = setup();
    writeServices(`
[keep]
command = "/bin/sleep"
args = ["1000"]
auto_start = true

[change]
command = "/bin/sleep"
args = ["1000"]
auto_start = true

[drop]
command = "/bin/sleep"
args = ["1000"]
auto_start = true

[idle]
command = "/bin/sleep"
args = ["1000"]
`);
    await manager.init();
    const pid = (n: string) => manager.get(n)?.pid;
    const keepPid = pid('keep');
    const changePid = pid('change');
    const dropPid = pid('drop');
    await manager.start('adhoc', adhoc({ command: '/bin/sleep', args: ['1000'] }));
    const adhocPid = pid('adhoc');

    // Same definitions, written differently (order, defaults spelled out): unchanged.
    writeServices(`
[idle]
args = ["1000"]
command = "/bin/sleep"

[keep]
auto_start = true
args = ["1000"]
command = "/bin/sleep"
max_restarts = 5
restart_on_failure = true

[change]
command = "/bin/sleep"
args = ["2000"]
auto_start = true

[new]
command = "/bin/sleep"
args = ["1000"]
auto_start = true

[bad]
command = 7
`);
    const result = await manager.reload();
    assert.deepEqual(result.added, ['new']);
    assert.deepEqual(result.removed, ['drop']);
    assert.deepEqual(result.changed, ['change']);
    assert.deepEqual(result.unchanged, ['idle', 'keep']);
    assert.equal(result.errors.length, 1);
    assert.match(result.errors[0] ?? '', /service "bad": field "command": expected a string/);

    assert.equal(pid('keep'), keepPid);
    assert.equal(manager.get('change')?.state, 'running');
    assert.notEqual(pid('change'), changePid);
    assert.equal(manager.get('change')?.restarts, 0);
    await waitFor(() => !isAlive(changePid as number), 5000, "the changed service's old process to end");
    assert.equal(manager.get('drop'), undefined);
    await waitFor(() => !isAlive(dropPid as number), 5000, "the dropped service's process to end");
    assert.equal(manager.get('new')?.state, 'running');
    assert.equal(pid('adhoc'), adhocPid);
    assert.equal(manager.get('adhoc')?.source, 'adhoc');
    assert.equal(manager.get('idle')?.state, 'stopped');

    // A syntax error keeps everything the file defined as it was.
    writeServices('[keep\n');
    const broken = await manager.reload();
    assert.deepEqual(broken.removed, []);
    assert.match(broken.errors[0] ?? '', /TOML syntax error/);
    assert.equal(pid('keep'), keepPid);
    assert.equal(manager.get('new')?.state, 'running');

    // Deleting the file removes its services (and stops them); the ad-hoc one stays.
    const { rmSync } = await import('node:fs');
    rmSync(env!.paths.servicesFile);
    const emptied = await manager.reload();
    assert.deepEqual(emptied.removed, ['change', 'idle', 'keep', 'new']);
    assert.deepEqual(
      manager.list().map((s) => s.name),
      ['adhoc'],
    );
    await manager.stop('adhoc', false);
    assert.deepEqual(taggedPids(tag), []);
  });

  void it('reload: a file definition cannot replace a running ad-hoc service of the same name', async () => {
    const { manager, writeServices } = setup();
    await manager.init();
    const running = await manager.start('x', adhoc({ command: '/bin/sleep', args: ['1000'] }));
    writeServices('[x]\ncommand = "/bin/sleep"\nargs = ["5"]\n');
    const r1 = await manager.reload();
    assert.match(
      r1.conflicts.join('\n'),
      /service "x" belongs to the running ad-hoc service; the definition in \S+services.toml is not loaded: stop it/,
    );
    assert.equal(manager.get('x')?.pid, running.pid);
    assert.match(
      manager.get('x')?.conflicts?.join('\n') ?? '',
      /the definition in \S+services.toml is not loaded/,
      'shown with the service, not only logged',
    );
    assert.equal(manager.conflicts().length, 1);
    await manager.stop('x', false);
    const r2 = await manager.reload();
    assert.deepEqual(r2.changed, ['x']);
    assert.equal(manager.get('x')?.source, 'file');
    assert.deepEqual(manager.conflicts(), [], 'resolved');
    await assert.rejects(manager.start('x', adhoc({ command: '/bin/true' })), /defined in/);
  });

  void it('reload updates a stopped service without starting it', async () => {
    const { manager, writeServices } = setup();
    writeServices('[s]\ncommand = "/bin/sleep"\nargs = ["1000"]\n');
    await manager.init();
    writeServices('[s]\ncommand = "/bin/sleep"\nargs = ["999"]\n');
    const r = await manager.reload();
    assert.deepEqual(r.changed, ['s']);
    assert.equal(manager.get('s')?.state, 'stopped');
    await manager.start('s');
    await waitFor(() => manager.get('s')?.pid, 10_000, 'a pid');
    await waitState(manager, 's', 'running');
  });

  void it('a log-option change applies without restarting the process', async () => {
    const { manager, writeServices } = setup();
    writeServices('[s]\ncommand = "/bin/sleep"\nargs = ["1000"]\nauto_start = true\n');
    await manager.init();
    const before = manager.get('s')?.pid;
    writeServices('[s]\ncommand = "/bin/sleep"\nargs = ["1000"]\nauto_start = true\nlog_max_bytes = 65536\n');
    const r = await manager.reload();
    assert.deepEqual(r.changed, ['s']);
    assert.equal(manager.get('s')?.pid, before);
  });

  void it('takes definitions from extra sources (plugins) with their source kind', async () => {
    const plugin: ServiceSource = {
      kind: 'plugin',
      load: async () => ({
        definitions: [
          {
            name: 'hive',
            source: 'plugin',
            config: parseServicesToml('[h]\ncommand="/bin/sleep"\nargs=["1000"]', 'f').definitions[0]!.config,
            auto_start: true,
            origin: 'plugin hive',
          },
        ],
        errors: ['plugin broken: bad manifest'],
      }),
    };
    const { manager, log } = setup([plugin]);
    await manager.init();
    assert.equal(manager.get('hive')?.state, 'running');
    assert.equal(manager.get('hive')?.source, 'plugin');
    assert.ok(log.lines.some((l) => l.includes('plugin broken: bad manifest')));
  });
});
