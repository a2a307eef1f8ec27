// `adi daemon start NAME -- CMD` and `adi daemon restart NAME` send one request after the handshake:
// the answer carries the service's pid, so no ListServices follows. A proxy between the CLI and the
// daemon counts the frames the CLI sends.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { decode } from '../../src/wire/codec.js';
import { FrameDecoder } from '../../src/wire/framing.js';
import { adi, tempHome, type TempHome } from '../helpers/env.js';
import { startDaemon } from '../helpers/daemon.js';

let h: TempHome;
let proxy: net.Server;
let proxyPath: string;
/** The `type` of every frame a client sent through the proxy, in order. */
const sent: string[] = [];

before(async () => {
  h = tempHome();
  await startDaemon(h.env);
  proxyPath = path.join(h.home, 'proxy.sock');
  proxy = net.createServer((client) => {
    const daemon = net.createConnection({ path: h.paths.socket.address });
    const decoder = new FrameDecoder(16 * 1024 * 1024);
    client.on('data', (chunk: Buffer) => {
      decoder.push(chunk, (body) => sent.push(String((decode(body) as Record<string, unknown>)['type'])));
      daemon.write(chunk);
    });
    daemon.pipe(client);
    client.on('close', () => daemon.destroy());
    daemon.on('close', () => client.destroy());
    client.on('error', () => undefined);
    daemon.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => proxy.listen(proxyPath, resolve));
});
after(async () => {
  await new Promise((resolve) => proxy.close(resolve));
  await h.cleanup();
});

test('adi daemon start NAME -- /bin/sleep 100 sends Hello and StartService, nothing else, and prints the pid', async () => {
  sent.length = 0;
  const r = await adi(['daemon', 'start', 'counted', '--', '/bin/sleep', '100'], {
    ...h.env,
    ADI_DAEMON_SOCKET: proxyPath,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^started counted \(pid \d+\)$/m);
  assert.deepEqual(sent, ['Hello', 'StartService']);
  const pid = Number(/pid (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(fs.existsSync(`/proc/${pid}`), 'the printed pid is the running service');
});

test('adi daemon restart NAME sends Hello and RestartService, nothing else, and prints the new pid', async () => {
  sent.length = 0;
  const r = await adi(['daemon', 'restart', 'counted'], { ...h.env, ADI_DAEMON_SOCKET: proxyPath });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^restarted counted \(pid \d+\)$/m);
  assert.deepEqual(sent, ['Hello', 'RestartService']);
  const stop = await adi(['daemon', 'stop', 'counted'], h.env);
  assert.equal(stop.code, 0, stop.stderr);
});
