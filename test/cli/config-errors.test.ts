// Errors in services.toml reach the person who made them: `reload` prints them and exits non-zero,
// and changes nothing of a service whose new definition is invalid; `status`, `services` and
// `start NAME` show them. And a command that starts the daemon sees the definitions loaded.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { adi, alive, home, type TempHome } from '../helpers/env.js';

function setUp(toml: string): TempHome {
  const h = home();
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  fs.writeFileSync(h.paths.servicesFile, toml);
  return h;
}

async function list(h: TempHome): Promise<Map<string, ServiceInfo>> {
  const r = await adi(['daemon', 'services', '--json'], h.env);
  assert.equal(r.code, 0, r.stderr);
  return new Map((JSON.parse(r.stdout) as ServiceInfo[]).map((s) => [s.name, s]));
}

const SERVICES = [
  '[web]',
  'command = "/bin/sleep"',
  'args = ["1000"]',
  'auto_start = true',
  '',
  '[worker]',
  'command = "/bin/sleep"',
  'args = ["1001"]',
  'auto_start = true',
  '',
].join('\n');

describe('configuration errors', () => {
  test('reload of a file with a syntax error exits non-zero, prints the error, and leaves every running service as it was', async () => {
    const h = setUp(SERVICES);
    assert.equal((await adi(['daemon', 'start'], h.env)).code, 0);
    const before = await list(h);
    const pids = ['web', 'worker'].map((n) => before.get(n)?.pid);
    assert.ok(
      pids.every((p) => typeof p === 'number' && alive(p)),
      JSON.stringify([...before.values()]),
    );

    fs.writeFileSync(h.paths.servicesFile, `${SERVICES}\n[broken\ncommand = "x"\n`);
    const r = await adi(['daemon', 'reload'], h.env);
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /services\.toml:\d+:\d+: TOML syntax error/);
    assert.match(r.stderr, /kept the last valid definition of web, worker/);
    const after = await list(h);
    assert.deepEqual(
      ['web', 'worker'].map((n) => after.get(n)?.pid),
      pids,
      'same pids',
    );
    assert.ok(['web', 'worker'].every((n) => after.get(n)?.state === 'running'));

    // status and services show the error too (on stderr; --json keeps stdout parseable).
    const status = await adi(['daemon', 'status'], h.env);
    assert.equal(status.code, 0);
    assert.match(status.stderr, /TOML syntax error/);
    const statusJson = JSON.parse((await adi(['daemon', 'status', '--json'], h.env)).stdout) as {
      config_errors: string[];
    };
    assert.match(statusJson.config_errors.join('\n'), /TOML syntax error/);
    const services = await adi(['daemon', 'services'], h.env);
    assert.match(services.stdout, /^NAME/);
    assert.match(services.stderr, /TOML syntax error/);

    // Fixed: reload succeeds and the errors are gone.
    fs.writeFileSync(h.paths.servicesFile, SERVICES);
    const fixed = await adi(['daemon', 'reload'], h.env);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.equal((await adi(['daemon', 'status'], h.env)).stderr, '');
  });

  test("an unknown key in a running service's table does not stop it; the error names file, service, field and a hint", async () => {
    const h = setUp(SERVICES);
    assert.equal((await adi(['daemon', 'start'], h.env)).code, 0);
    const webPid = (await list(h)).get('web')?.pid;
    assert.ok(typeof webPid === 'number');

    fs.writeFileSync(h.paths.servicesFile, SERVICES.replace('args = ["1000"]', 'args = ["1000"]\nstop_timeuot = 3'));
    const r = await adi(['daemon', 'reload'], h.env);
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    assert.match(
      r.stderr,
      /services\.toml: service "web": field "stop_timeuot": unknown field \(did you mean "stop_timeout"\?\)/,
    );
    assert.match(r.stderr, /kept the last valid definition of web/);
    const after = await list(h);
    assert.equal(after.get('web')?.pid, webPid);
    assert.equal(after.get('web')?.state, 'running');
    assert.ok(alive(webPid));
    // start NAME of it says it runs its last valid definition, and why.
    const again = await adi(['daemon', 'start', 'web'], h.env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /web runs its last valid definition[^]*field "stop_timeuot": unknown field/);

    // start NAME of a service whose only definition is invalid says why, instead of "no service".
    fs.writeFileSync(h.paths.servicesFile, `${SERVICES}\n[api]\ncomand = "/bin/sleep"\n`);
    assert.equal((await adi(['daemon', 'reload'], h.env)).code, 1);
    const start = await adi(['daemon', 'start', 'api'], h.env);
    assert.notEqual(start.code, 0);
    assert.match(start.stderr, /service "api": field "comand": unknown field \(did you mean "command"\?\)/);
  });

  test('a command that starts the daemon sees the services defined (stop; services --json, repeated)', async () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const h = setUp(names.map((n) => `[${n}]\ncommand = "/bin/sleep"\nargs = ["1000"]\n`).join('\n'));
    const counts: number[] = [];
    for (let i = 0; i < 6; i++) {
      const stop = await adi(['daemon', 'stop'], h.env);
      assert.equal(stop.code, 0, stop.stderr);
      counts.push((await list(h)).size);
    }
    assert.deepEqual(
      counts,
      names.map(() => names.length),
    );
  });
});
