// Lower caps for what a plugin's manifest may ask (log sizes, processes), and how the limits reach the
// spawn (prlimit's argv, per run-as mode). The spawn itself is tested as root in
// test/privilege/limits.test.ts (a fork bomb), and memory_max below with a real allocation.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { limitedArgv, prlimitPath } from '../../src/system/rlimits.js';
import { parseManifest } from '../../src/plugins/manifest.js';
import { SERVICE_CONFIG_SCHEMA, validateServiceConfig } from '../../src/protocol/config-schema.js';
import { PLUGIN_RULES } from '../../src/services/config.js';
import { buildLaunch, processLimits } from '../../src/services/launch.js';

const MiB = 1024 * 1024;

void test("a plugin's log caps are lower than the services file's, and it always has a process limit", () => {
  const admin = validateServiceConfig({
    command: '/x',
    log_max_bytes: 1024 * MiB,
    log_max_files: 50,
    pids_max: 100_000,
  });
  assert.deepEqual(admin.errors, []);
  assert.equal(admin.config?.pids_max, 100_000);
  assert.equal(
    validateServiceConfig({ command: '/x' }).config?.pids_max,
    null,
    "the admin's services may be unlimited",
  );

  const plugin = validateServiceConfig(
    { command: '/x', log_max_bytes: 1024 * MiB, log_max_files: 50, pids_max: 100_000 },
    { plugin: PLUGIN_RULES },
  );
  assert.deepEqual(
    plugin.errors.map((e) => e.field),
    ['log_max_bytes', 'log_max_files', 'pids_max'],
  );
  assert.match(
    plugin.errors[0]?.message ?? '',
    new RegExp(`from ${SERVICE_CONFIG_SCHEMA.log_max_bytes.min} to ${PLUGIN_RULES.log_max_bytes.max}`),
  );

  const defaults = validateServiceConfig({ command: '/x' }, { plugin: PLUGIN_RULES }).config;
  assert.equal(defaults?.pids_max, PLUGIN_RULES.pids_max.default);
  assert.equal(defaults?.log_max_bytes, PLUGIN_RULES.log_max_bytes.default);
  assert.equal(defaults?.log_max_files, PLUGIN_RULES.log_max_files.default);
  assert.equal(
    validateServiceConfig({ command: '/x', pids_max: null }, { plugin: PLUGIN_RULES }).config?.pids_max,
    PLUGIN_RULES.pids_max.default,
    'null cannot lift it',
  );
  assert.equal(validateServiceConfig({ command: '/x', memory_max: 1 }).errors[0]?.field, 'memory_max');
});

void test('a manifest asking for more log space than a plugin may have is refused, naming the field', () => {
  const pkg = (service: Record<string, unknown>): unknown => ({
    name: 'big-logs',
    version: '1.0.0',
    bin: 'cli.js',
    adi: { service: { name: 'big', command: 'serve', ...service } },
  });
  assert.throws(
    () => parseManifest(pkg({ log_max_bytes: 100 * MiB }), 'package.json'),
    (err: Error) => /adi\.service\.log_max_bytes/.test(err.message),
  );
  assert.throws(
    () => parseManifest(pkg({ log_max_files: 10 }), 'package.json'),
    (err: Error) => /adi\.service\.log_max_files/.test(err.message),
  );
  assert.throws(
    () => parseManifest(pkg({ pids_max: 1_000_000 }), 'package.json'),
    (err: Error) => /adi\.service\.pids_max/.test(err.message),
  );
  const ok = parseManifest(pkg({ log_max_bytes: MiB, pids_max: 32, memory_max: 256 * MiB }), 'package.json');
  assert.deepEqual(ok.service?.fields, { log_max_bytes: MiB, pids_max: 32, memory_max: 256 * MiB });
});

void test('RLIMIT_NPROC only where the service runs as the plugin user; the memory limit everywhere', () => {
  const cfg = { pids_max: null, memory_max: null };
  assert.deepEqual(processLimits(cfg, 'p', 'uid'), { nproc: PLUGIN_RULES.pids_max.default, data: null });
  assert.deepEqual(processLimits(cfg, 'p', 'sudo'), { nproc: PLUGIN_RULES.pids_max.default, data: null });
  // Embedded mode: the admin's own uid (its count includes their shell); root: exempt from it.
  assert.deepEqual(processLimits(cfg, 'p', 'self'), { nproc: null, data: null });
  assert.deepEqual(processLimits(cfg, null, 'uid'), { nproc: null, data: null }, "the admin's service: no default");
  assert.deepEqual(processLimits({ pids_max: 10, memory_max: 64 * MiB }, null, 'root-chain'), {
    nproc: null,
    data: 64 * MiB,
  });
  const prlimit = prlimitPath('test');
  assert.deepEqual(limitedArgv({ nproc: 10, data: 64 * MiB }, '/bin/x', ['a', '--', 'b'], 'x'), {
    file: prlimit,
    args: ['--nproc=10:10', `--data=${64 * MiB}:${64 * MiB}`, '--', '/bin/x', 'a', '--', 'b'],
  });
  assert.deepEqual(limitedArgv({ nproc: null, data: null }, '/bin/x', ['a'], 'x'), { file: '/bin/x', args: ['a'] });
});

void test('memory_max: an allocation past it fails inside the service, whatever mode it runs in', () => {
  const config = validateServiceConfig({
    command: process.execPath,
    args: [
      '-e',
      'try { Buffer.alloc(400 * 1024 * 1024, 1); console.log("allocated") } catch (e) { console.log("refused:", e.message) }',
    ],
    memory_max: 256 * MiB,
  }).config;
  assert.ok(config !== null);
  const launch = buildLaunch('mem', config, { baseEnv: process.env, home: '/', runId: 'r' });
  assert.equal(launch.file, prlimitPath('test'));
  const r = spawnSync(launch.file, launch.args, { env: launch.env, encoding: 'utf8' });
  assert.match(r.stdout, /^refused:/, r.stdout + r.stderr);
  const free = validateServiceConfig({
    command: process.execPath,
    args: ['-e', 'Buffer.alloc(400 * 1024 * 1024, 1); console.log("allocated")'],
  }).config;
  assert.ok(free !== null);
  const plain = buildLaunch('mem', free, { baseEnv: process.env, home: '/', runId: 'r' });
  assert.equal(spawnSync(plain.file, plain.args, { env: plain.env, encoding: 'utf8' }).stdout.trim(), 'allocated');
});
