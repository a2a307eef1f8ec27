// A registry package through a local registry (an HTTP server in this process, named by
// ADI_NPM_REGISTRY): only the plugin's own tarball is fetched before the question, its dependencies
// after it and only when approved; each request is recorded, so the order is checked, not assumed.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { adi, type TempHome } from '../helpers/env.js';
import { pluginHome, removeStageUser, stageSkip, tarPack, writePlugin } from './util.js';

const skip = stageSkip();
if (skip !== false) console.log(`# registry plugin test skipped: ${skip}`);

const STAGE_USER = 'adi-itest-reg';
let h: TempHome | null = null;
let server: http.Server;
let base = '';
const requests: string[] = [];
/** name -> { version, tarball bytes } */
const packages = new Map<string, { version: string; tgz: Buffer }>();

before(async () => {
  server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '/');
    requests.push(url);
    const tarball = /^\/([^/]+)\/-\/(.+\.tgz)$/.exec(url);
    if (tarball !== null) {
      const p = packages.get(tarball[1] as string);
      if (p === undefined) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(p.tgz);
      return;
    }
    const name = url.slice(1);
    const p = packages.get(name);
    if (p === undefined)
      return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    const integrity = `sha512-${crypto.createHash('sha512').update(p.tgz).digest('base64')}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        name,
        'dist-tags': { latest: p.version },
        versions: {
          [p.version]: {
            name,
            version: p.version,
            dist: { tarball: `${base}/${name}/-/${name}-${p.version}.tgz`, integrity },
          },
        },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  removeStageUser(STAGE_USER);
});
afterEach(async () => {
  await h?.cleanup();
  h = null;
  requests.length = 0;
});

/** Pack `dir` and serve it from the registry under its name. */
function publish(t: TempHome, dir: string, name: string, version: string): void {
  const tgz = tarPack(dir, path.join(t.home, 'packs'));
  packages.set(name, { version, tgz: fs.readFileSync(tgz) });
}

void describe('a plugin from a registry', { skip }, () => {
  void it('only its own tarball is fetched before the question; "n" fetches no dependency', async () => {
    h = pluginHome(STAGE_USER);
    const t = h;
    const dep = path.join(t.home, 'dep');
    fs.mkdirSync(dep);
    fs.writeFileSync(
      path.join(dep, 'package.json'),
      JSON.stringify({ name: 'reg-dep', version: '1.0.0', main: 'index.js' }),
    );
    fs.writeFileSync(path.join(dep, 'index.js'), 'module.exports = "dep";\n');
    publish(t, dep, 'reg-dep', '1.0.0');
    const plug = writePlugin(path.join(t.home, 'plug'), {
      name: 'reg-plug',
      service: { name: 'reg-svc', command: 'serve', privileged_commands: ['/usr/bin/id -u'] },
      extra: { dependencies: { 'reg-dep': '^1.0.0' } },
    });
    publish(t, plug, 'reg-plug', '1.0.0');
    const env = { ...t.env, ADI_NPM_REGISTRY: `${base}/` };

    const no = await adi(['plugin', 'install', 'reg-plug@1.0.0'], env, { input: 'n\n', timeoutMs: 180_000 });
    assert.equal(no.code, 1, no.stdout + no.stderr);
    assert.match(no.stdout, /Allow\? \[y\/N\] n\n/);
    assert.deepEqual(
      requests.filter((r) => r.includes('reg-dep')),
      [],
      'no dependency fetched before (or without) approval',
    );
    assert.ok(
      requests.some((r) => r.startsWith('/reg-plug/-/')),
      `the plugin's tarball was fetched: ${requests.join(', ')}`,
    );
    assert.equal(fs.existsSync(path.join(t.paths.pluginsDir, 'reg-plug')), false);

    const yes = await adi(['plugin', 'install', 'reg-plug@^1.0.0'], env, { input: 'y\n', timeoutMs: 180_000 });
    assert.equal(yes.code, 0, yes.stdout + yes.stderr);
    const asked = yes.stdout.indexOf('Allow?');
    const fetching = yes.stdout.indexOf('Fetching the dependencies of reg-plug');
    assert.ok(asked >= 0 && fetching > asked, yes.stdout);
    assert.ok(
      requests.some((r) => r.startsWith('/reg-dep/-/')),
      'the dependency was fetched after the approval',
    );
    assert.equal(
      fs.readFileSync(path.join(t.paths.pluginsDir, 'reg-plug', 'node_modules', 'reg-dep', 'index.js'), 'utf8'),
      'module.exports = "dep";\n',
    );
  });
});
