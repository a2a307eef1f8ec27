// One limit, one message, whatever the door: each bound on which the wire's check and the services
// layer's once disagreed is tried just past it and at it through every entry point of a definition:
// StartService on a real daemon's socket, services.toml through `adi daemon reload`, and a plugin's
// manifest read by the plugin source. Past the bound, all three refuse with the same words; at it,
// all three accept.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PluginSource } from '../../src/plugins/source.js';
import { adi, tempHome, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { writePlugin } from '../plugins/util.js';
import { startDaemon } from '../helpers/daemon.js';

const MiB = 1024 * 1024;

interface Case {
  /** The field as a path (`liveness.interval_secs`). */
  field: string;
  past: unknown;
  at: unknown;
  /** What every entry point says past the bound. */
  message: string;
  /** Not a field a manifest may set at all (refused there for another reason). */
  notInManifest?: true;
}

const CASES: Case[] = [
  {
    field: 'max_restarts',
    past: 1001,
    at: 1000,
    message: 'field "max_restarts": expected an integer from 0 to 1000, got the number 1001',
  },
  {
    field: 'liveness.failure_threshold',
    past: 101,
    at: 100,
    message: 'field "liveness.failure_threshold": expected an integer from 1 to 100, got the number 101',
  },
  {
    field: 'liveness.interval_secs',
    past: 3601,
    at: 3600,
    message: 'field "liveness.interval_secs": expected a number from 0.05 to 3600, got the number 3601',
  },
  {
    field: 'memory_max',
    past: 16 * MiB - 1,
    at: 16 * MiB,
    message: `field "memory_max": expected an integer from ${16 * MiB} to ${2 ** 40}, got the number ${16 * MiB - 1}`,
  },
  {
    field: 'stop_timeout',
    past: 3601,
    at: 3600,
    message: 'field "stop_timeout": expected a number from 0 to 3600, got the number 3601',
  },
  {
    field: 'working_dir',
    past: 'srv/app',
    at: '/tmp',
    message: 'field "working_dir": must be an absolute path, got a string "srv/app"',
    notInManifest: true,
  },
];

/** The service fields that put `value` at `field` (a health field inside a tcp liveness probe). */
function fields(c: Case, value: unknown): Record<string, unknown> {
  const [outer, inner] = c.field.split('.') as [string, string | undefined];
  return inner === undefined ? { [outer]: value } : { [outer]: { tcp: 9, [inner]: value } };
}

const name = (c: Case, kind: string): string => `${kind}-${c.field.replace(/[._]/g, '-')}`;

function toml(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${k} = ${toml(v)}`);
  return `{ ${entries.join(', ')} }`;
}

function tomlTable(service: string, c: Case, value: unknown): string {
  const lines = Object.entries(fields(c, value)).map(([k, v]) => `${k} = ${toml(v)}`);
  return [`[${service}]`, 'command = "/bin/sleep"', 'args = ["60"]', ...lines, ''].join('\n');
}

let h: TempHome;
let peer: RawPeer;
let nextId = 1;

before(async () => {
  h = tempHome();
  await startDaemon(h.env);
  peer = await RawPeer.connect(h.paths.socket);
  const token = fs.readFileSync(h.paths.tokenFile, 'utf8').trim();
  peer.send({ id: 0, type: 'Hello', protocol: 1, client: 'config-limits', token });
  assert.equal((await peer.waitFrame((f) => f['id'] === 0))?.['type'], 'Welcome');
});
after(async () => {
  peer.close();
  await h.cleanup();
});

async function call(request: Record<string, unknown>): Promise<Record<string, unknown>> {
  const id = nextId++;
  peer.send({ id, ...request });
  const frame = await peer.waitFrame((f) => f['id'] === id, 20_000);
  assert.ok(frame, `an answer to ${String(request['type'])}`);
  return frame;
}

describe('the same limits and messages through every entry point', () => {
  test('StartService over the socket: past the bound BAD_CONFIG with the message, at it the service starts', async () => {
    for (const c of CASES) {
      const config = { command: '/bin/sleep', args: ['60'], ...fields(c, c.past) };
      const refused = await call({ type: 'StartService', name: name(c, 'past'), config });
      assert.equal(refused['type'], 'Error', c.field);
      assert.equal(refused['code'], 'BAD_CONFIG', c.field);
      assert.equal(refused['message'], `service "${name(c, 'past')}": ${c.message}`);
    }
    for (const c of CASES) {
      const config = { command: '/bin/sleep', args: ['60'], ...fields(c, c.at) };
      const started = await call({ type: 'StartService', name: name(c, 'at'), config });
      assert.equal(started['type'], 'Ok', `${c.field} at ${String(c.at)}: ${String(started['message'])}`);
      const stopped = await call({ type: 'StopService', name: name(c, 'at'), force: true });
      assert.equal(stopped['type'], 'Ok', String(stopped['message']));
    }
  });

  test('services.toml through adi daemon reload: the same message past the bound, loaded at it', async () => {
    fs.mkdirSync(h.paths.configDir, { recursive: true });
    const text = CASES.flatMap((c) => [
      tomlTable(`file-past-${name(c, 'x')}`, c, c.past),
      tomlTable(`file-at-${name(c, 'x')}`, c, c.at),
    ]).join('\n');
    fs.writeFileSync(h.paths.servicesFile, text);
    const r = await adi(['daemon', 'reload'], h.env);
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    for (const c of CASES) {
      const line = `${h.paths.servicesFile}: service "file-past-${name(c, 'x')}": ${c.message}`;
      assert.ok(r.stderr.includes(line), `reload reports ${line}\n${r.stderr}`);
    }
    const listed = await adi(['daemon', 'services', '--json'], h.env);
    assert.equal(listed.code, 0, listed.stderr);
    const names = new Set((JSON.parse(listed.stdout) as { name: string }[]).map((s) => s.name));
    for (const c of CASES) {
      assert.ok(names.has(`file-at-${name(c, 'x')}`), `file-at-${name(c, 'x')} is loaded`);
      assert.ok(!names.has(`file-past-${name(c, 'x')}`), `file-past-${name(c, 'x')} is not`);
    }
  });

  test("a plugin's manifest read by the plugin source: the same message past the bound, defined at it", async () => {
    const dir = fs.mkdtempSync(path.join(h.home, 'plugins-'));
    const paths = { ...h.paths, pluginsDir: dir };
    const manifestCases = CASES.filter((c) => c.notInManifest !== true);
    for (const c of manifestCases) {
      for (const [kind, value] of [
        ['past', c.past],
        ['at', c.at],
      ] as const) {
        const plugin = `pl-${kind}-${name(c, 'x')}`;
        writePlugin(path.join(dir, plugin), {
          name: plugin,
          service: { name: `${plugin}-svc`, command: 'serve', ...fields(c, value) },
        });
      }
    }
    const result = await new PluginSource(paths, { separation: () => false }).load();
    const errors = result.errors.join('\n');
    const defined = new Set(result.definitions.map((d) => d.plugin));
    for (const c of manifestCases) {
      const past = `pl-past-${name(c, 'x')}`;
      assert.ok(
        errors.includes(`field "adi.service.${c.message.slice('field "'.length)}`),
        `plugin ${past}: ${c.message}\n${errors}`,
      );
      assert.ok(!defined.has(past), past);
      assert.ok(defined.has(`pl-at-${name(c, 'x')}`), `pl-at-${name(c, 'x')}: ${errors}`);
    }
    // working_dir is not a manifest's to choose at all.
    assert.ok(manifestCases.length < CASES.length);
  });
});
