// Service and plugin names never reach a path unchecked: names with "../", "/", NUL, upper case or
// too many characters are refused at every entry point (the protocol, the CLI, services.toml), and no
// file is created for them anywhere.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { adi, tempHome, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { startDaemon } from '../helpers/daemon.js';

const BAD = [
  '../evil',
  '../../evil',
  '/tmp/evil',
  'a/evil',
  '..',
  '.',
  'evil\0x',
  'EVIL',
  '',
  '-evil',
  'a'.repeat(65),
  'evil\nname',
  'e vil',
];

let h: TempHome;
let peer: RawPeer;

/** Every file under a directory (paths relative to it). */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    out.push(path.relative(base, full));
    if (e.isDirectory()) out.push(...walk(full, base));
  }
  return out;
}

before(async () => {
  h = tempHome();
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  // services.toml entry point: bad names next to a good one.
  fs.writeFileSync(
    h.paths.servicesFile,
    [
      '["../evil"]',
      'command = "/bin/sleep"',
      'args = ["1000"]',
      'auto_start = true',
      '',
      '["/tmp/evil-abs"]',
      'command = "/bin/sleep"',
      'args = ["1000"]',
      'auto_start = true',
      '',
      '["evil\\u0000nul"]',
      'command = "/bin/sleep"',
      'args = ["1000"]',
      'auto_start = true',
      '',
      '[good]',
      'command = "/bin/sleep"',
      'args = ["1000"]',
      'auto_start = true',
      '',
    ].join('\n'),
  );
  await startDaemon(h.env);
  peer = await RawPeer.connect(h.paths.socket);
  peer.send({
    id: 0,
    type: 'Hello',
    protocol: PROTOCOL_VERSION,
    client: 'names',
    token: fs.readFileSync(h.paths.tokenFile, 'utf8'),
  });
  assert.equal((await peer.waitFrame((f) => f['id'] === 0))?.['identity'], 'admin');
});
after(async () => {
  peer.close();
  await h.cleanup();
  assert.equal(fs.existsSync('/tmp/evil'), false);
  assert.equal(fs.existsSync('/tmp/evil-abs.log'), false);
});

describe('names at every entry point', () => {
  test('services.toml: invalid names are reported and not loaded; the valid one runs', async () => {
    const client = new DaemonClient({ env: h.env });
    try {
      const names = (await client.listServices()).map((s) => s.name);
      assert.deepEqual(names, ['good']);
    } finally {
      client.close();
    }
    const log = fs.readFileSync(h.paths.logFile, 'utf8');
    assert.match(log, /services\.toml: .*"\.\.\/evil"/);
    assert.match(log, /services\.toml: .*"\/tmp\/evil-abs"/);
  });

  test('protocol: every request that carries a name refuses bad names as the admin', async () => {
    let id = 100;
    for (const name of BAD) {
      const requests = [
        { type: 'StartService', name, config: { command: '/bin/sleep', args: ['1000'] } },
        { type: 'StartService', name, config: null },
        { type: 'StopService', name, force: true },
        { type: 'RestartService', name },
        { type: 'ServiceLogs', name, lines: 10, follow: false },
        { type: 'ServiceLogs', name, lines: 10, follow: true },
      ];
      for (const r of requests) {
        const rid = id++;
        peer.send({ id: rid, ...r });
        const reply = await peer.waitFrame((f) => f['id'] === rid);
        assert.equal(reply?.['type'], 'Error', `${r.type} ${JSON.stringify(name)}: ${JSON.stringify(reply)}`);
        assert.match(String(reply?.['code']), /^(BAD_SERVICE_NAME|BAD_REQUEST)$/, `${r.type} ${JSON.stringify(name)}`);
      }
    }
    assert.equal(peer.closed, false, 'refusals do not cost the connection');
  });

  test('CLI: start, stop, restart and logs refuse bad names before sending anything', async () => {
    const calls: [string[], RegExp][] = [];
    for (const name of ['../evil', '/tmp/evil', 'a/evil', '..']) {
      for (const args of [
        ['daemon', 'start', name, '--', '/bin/sleep', '1000'],
        ['daemon', 'start', name],
        ['daemon', 'stop', name],
        ['daemon', 'restart', name],
        ['daemon', 'logs', name],
      ]) {
        calls.push([args, /Invalid service name/]);
      }
    }
    calls.push(
      [['plugin', 'uninstall', '../evil'], /Invalid plugin name/],
      [['plugin', 'uninstall', '/tmp/evil'], /Invalid plugin name/],
    );
    // A few at a time: each is a node process start.
    for (let i = 0; i < calls.length; i += 6) {
      await Promise.all(
        calls.slice(i, i + 6).map(async ([args, message]) => {
          const r = await adi(args, h.env);
          assert.notEqual(r.code, 0, `adi ${args.join(' ')} must fail`);
          assert.match(r.stderr, message, `adi ${args.join(' ')}: ${r.stderr}`);
        }),
      );
    }
  });

  test('no file was created for any bad name', () => {
    const files = walk(h.home);
    const strays = files.filter((f) => /evil/i.test(f));
    assert.deepEqual(strays, []);
    const logs = fs.readdirSync(h.paths.logsDir).sort();
    assert.ok(
      logs.every((f) => /^(daemon\.log|good\.(log|idx|owner)|audit\.log)/.test(f) || f.endsWith('.jsonl')),
      `logs dir: ${logs.join(', ')}`,
    );
  });
});
