// docs/protocol.md against the daemon: the tables (requests, access, answers, responses, fields, error
// codes) are read from the page and compared with the code and with live frames, and each point a
// client written from the page alone relies on is tried on a real daemon over a raw socket.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ERROR_CODES, SUDO_DENIAL_RULES } from '../../src/core/errors.js';
import { REQUESTS } from '../../src/protocol/requests.js';
import { REQUEST_TYPES, RESPONSE_TYPES } from '../../src/protocol/types.js';
import type { Handler } from '../../src/server/context.js';
import { decode, encodeFrame } from '../../src/wire/codec.js';
import { FrameDecoder } from '../../src/wire/framing.js';
import { ROOT, tempHome, type TempHome } from '../helpers/env.js';
import { RawPeer } from '../helpers/raw.js';
import { startDaemon } from '../helpers/daemon.js';

const DOC = fs.readFileSync(path.join(ROOT, 'docs', 'protocol.md'), 'utf8');

/** The text of the section under `heading` (a line starting with it), up to the next heading of any level. */
function section(heading: string): string {
  const lines = DOC.split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  assert.ok(start >= 0, `docs/protocol.md has a heading ${heading}`);
  const end = lines.findIndex((l, i) => i > start && /^#{2,3} /.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** The first table of a section as rows of cells (header and rule left out). */
function table(heading: string): string[][] {
  const rows = section(heading)
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) =>
      l
        .slice(1, -1)
        .split(' | ')
        .map((c) => c.trim()),
    );
  return rows.slice(2);
}

const unquote = (cell: string): string => cell.replace(/^`|`$/g, '').replace(/\?$/, '');

/** Field names of a table (first column), and which are marked optional (`name?`). */
function fields(heading: string): { all: Set<string>; required: Set<string> } {
  const rows = table(heading);
  return {
    all: new Set(rows.map((r) => unquote(r[0] as string))),
    required: new Set(rows.filter((r) => !(r[0] as string).includes('?')).map((r) => unquote(r[0] as string))),
  };
}

/** The field names a response row of section 6 lists (`name: type` or `name?: type`). */
function responseFields(type: string): { all: Set<string>; optional: Set<string> } {
  const row = table('## 6. Responses').find((r) => r[0] === `\`${type}\``);
  assert.ok(row, `section 6 lists ${type}`);
  const all = new Set<string>();
  const optional = new Set<string>();
  for (const m of (row[1] as string).matchAll(/`(\w+)(\??):/g)) {
    all.add(m[1] as string);
    if (m[2] === '?') optional.add(m[1] as string);
  }
  return { all, optional };
}

describe('the tables of docs/protocol.md match the code', () => {
  test('section 5 lists every request, with its access and its answer as the request table declares them', () => {
    const rows = table('## 5. Requests');
    assert.deepEqual(rows.map((r) => unquote(r[0] as string)).sort(), [...REQUEST_TYPES].sort());
    for (const [cell, access, , answer] of rows) {
      const type = unquote(cell as string) as keyof typeof REQUESTS;
      const spec = REQUESTS[type];
      assert.equal(access, spec.access, `${type}: access`);
      assert.ok(answer?.includes(`\`${spec.answer}\``), `${type}: the answer names ${spec.answer}: ${answer}`);
      if (spec.stream !== undefined)
        assert.ok(answer?.includes(`\`${spec.stream}\``), `${type}: the answer names its stream frames ${spec.stream}`);
      for (const field of spec.carries ?? [])
        assert.ok(answer?.includes(`\`${field}\``), `${type}: the answer says it carries ${field}`);
    }
  });

  test('section 6 lists every response type, and no other', () => {
    assert.deepEqual(
      table('## 6. Responses')
        .map((r) => unquote(r[0] as string))
        .sort(),
      [...RESPONSE_TYPES].sort(),
    );
  });

  test('section 7 lists every error code (daemon or client side), and no other', () => {
    const text = section('## 7. Error codes');
    const inTable = table('## 7. Error codes').map((r) => unquote(r[0] as string));
    const clientSide = [...(text.split('Client-side codes:')[1] ?? '').matchAll(/`([A-Z_]+)`/g)].map(
      (m) => m[1] as string,
    );
    assert.deepEqual([...new Set([...inTable, ...clientSide])].sort(), [...ERROR_CODES].sort());
  });

  test('ErrorData lists every SUDO_DENIED rule the daemon sends, in the order it checks them', () => {
    const block = section('### ErrorData')
      .split('\n\n')
      .find((b) => b.startsWith('| rule |'));
    assert.ok(block !== undefined, 'ErrorData has a table of rules');
    const rules = block
      .split('\n')
      .slice(2)
      .map((l) => unquote(l.slice(1).split(' | ')[0]?.trim() ?? ''));
    assert.deepEqual(rules, [...SUDO_DENIAL_RULES]);
  });

  test('the pairing is a type: a handler that returns another answer than the table declares does not compile', () => {
    // @ts-expect-error StartService answers Ok with the service it started
    const withoutService: Handler<'StartService'> = () => ({ type: 'Ok' });
    // @ts-expect-error ListServices answers Services
    const wrongAnswer: Handler<'ListServices'> = () => ({ type: 'Ok' });
    assert.equal(typeof withoutService, 'function');
    assert.equal(typeof wrongAnswer, 'function');
  });

  test("section 8's client bytes are what an encoder makes of its Ping", () => {
    const hex = section('## 8. Example').match(/client -> ([0-9a-f ]+)\n/)?.[1];
    assert.ok(hex);
    assert.equal(encodeFrame({ id: 1, type: 'Ping' }, 1024).toString('hex'), hex.replace(/ /g, ''));
  });
});

let h: TempHome;
let token: string;

before(async () => {
  h = tempHome();
  await startDaemon(h.env);
  token = fs.readFileSync(h.paths.tokenFile, 'utf8').trim();
});
after(async () => {
  await h.cleanup();
});

async function admin(): Promise<RawPeer> {
  const peer = await RawPeer.connect(h.paths.socket);
  peer.send({ id: 0, type: 'Hello', protocol: 1, client: 'spec-test', token });
  assert.equal((await peer.waitFrame((f) => f['id'] === 0))?.['type'], 'Welcome');
  return peer;
}

async function answer(
  peer: RawPeer,
  request: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>> {
  peer.send(request);
  const frame = await peer.waitFrame((f) => f['id'] === request['id'], timeoutMs);
  assert.ok(frame, `an answer to ${String(request['type'])}`);
  return frame;
}

/** The keys a live frame has, checked against the fields section 6 (or a table) documents. */
function assertDocumented(
  frame: Record<string, unknown>,
  documented: { all: Set<string> },
  what: string,
  required: Iterable<string> = [],
): void {
  for (const key of Object.keys(frame))
    if (key !== 'id' && key !== 'type')
      assert.ok(documented.all.has(key), `${what}: the daemon sends "${key}", which the doc does not list`);
  for (const key of required) assert.ok(key in frame, `${what}: the doc promises "${key}"`);
}

describe('a client written from docs/protocol.md', () => {
  test("section 8: the daemon's answer to the documented Ping starts with the documented bytes", async () => {
    const doc = section('## 8. Example');
    const client = Buffer.from((doc.match(/client -> ([0-9a-f ]+)\n/)?.[1] ?? '').replace(/ /g, ''), 'hex');
    const daemonHex = (doc.match(/daemon -> xx 00 00 00 {2}([0-9a-f ]+?) \.\.\./)?.[1] ?? '').replace(/ /g, '');
    assert.ok(daemonHex.length > 0);
    const socket = net.createConnection({ path: h.paths.socket.address });
    const body = await new Promise<Buffer>((resolve, reject) => {
      const decoder = new FrameDecoder(16 * 1024 * 1024);
      socket.on('data', (chunk: Buffer) => decoder.push(chunk, (b) => resolve(Buffer.from(b))));
      socket.on('error', reject);
      socket.write(client);
    });
    socket.destroy();
    assert.equal(body.subarray(0, daemonHex.length / 2).toString('hex'), daemonHex);
    const pong = decode(body) as Record<string, unknown>;
    const documented = responseFields('Pong');
    assertDocumented(
      pong,
      documented,
      'Pong',
      [...documented.all].filter((k) => !documented.optional.has(k)),
    );
  });

  test('Welcome, Ok with service, Services and ServiceInfo carry the documented fields', async () => {
    const peer = await admin();
    const welcome = peer.frames.find((f) => f['id'] === 0) as Record<string, unknown>;
    assertDocumented(welcome, responseFields('Welcome'), 'Welcome', responseFields('Welcome').all);
    const ok = await answer(peer, {
      id: 1,
      type: 'StartService',
      name: 'spec-sleeper',
      config: { command: '/bin/sleep', args: ['100'] },
    });
    assert.equal(ok['type'], 'Ok', JSON.stringify(ok));
    assertDocumented(ok, responseFields('Ok'), 'Ok', ['service']);
    const info = fields('### ServiceInfo');
    const service = ok['service'] as Record<string, unknown>;
    assertDocumented(service, info, 'ServiceInfo', info.required);
    assert.equal(service['name'], 'spec-sleeper');
    assert.equal(typeof service['pid'], 'number');
    const restarted = await answer(peer, { id: 2, type: 'RestartService', name: 'spec-sleeper' });
    assert.equal(restarted['type'], 'Ok');
    assert.notEqual((restarted['service'] as Record<string, unknown>)['pid'], service['pid'], 'a new process');
    const services = await answer(peer, { id: 3, type: 'ListServices' });
    assertDocumented(services, responseFields('Services'), 'Services', ['list']);
    for (const s of services['list'] as Record<string, unknown>[])
      assertDocumented(s, info, 'ServiceInfo', info.required);
    assert.equal((await answer(peer, { id: 4, type: 'StopService', name: 'spec-sleeper', force: true }))['type'], 'Ok');
    peer.close();
  });

  test('a 65-character name is BAD_SERVICE_NAME, with the request id, and the connection stays open', async () => {
    const peer = await admin();
    for (const [id, type] of [
      [1, 'StopService'],
      [2, 'RestartService'],
      [3, 'StartService'],
    ] as const) {
      const reply = await answer(peer, { id, type, name: 'a'.repeat(65), force: false });
      assert.equal(reply['code'], 'BAD_SERVICE_NAME', `${type}: ${String(reply['message'])}`);
    }
    assert.equal((await answer(peer, { id: 4, type: 'Ping' }))['type'], 'Pong');
    assert.equal(peer.closed, false);
    peer.close();
  });

  test('id 0 is reserved: a request other than Hello with id 0 gets BAD_REQUEST (id 0) and the connection is closed', async () => {
    for (const request of [
      { id: 0, type: 'Ping' },
      { id: 0, type: 'ListServices' },
      { id: 0, type: 'StopService' },
    ]) {
      const peer = await admin();
      peer.frames.length = 0;
      const reply = await answer(peer, request);
      assert.equal(reply['type'], 'Error');
      assert.equal(reply['code'], 'BAD_REQUEST', String(reply['message']));
      assert.ok(await peer.waitClosed(5000), `${JSON.stringify(request)}: an error with id 0 closes the connection`);
    }
  });

  test('a second Hello with id 0 is BAD_REQUEST and closes the connection; with another id it leaves it open', async () => {
    const peer = await admin();
    peer.frames.length = 0;
    const again = await answer(peer, { id: 7, type: 'Hello', protocol: 1, client: 'x' });
    assert.equal(again['code'], 'BAD_REQUEST');
    assert.equal((await answer(peer, { id: 8, type: 'Ping' }))['type'], 'Pong');
    const zero = await answer(peer, { id: 0, type: 'Hello', protocol: 1, client: 'x' });
    assert.equal(zero['code'], 'BAD_REQUEST');
    assert.ok(await peer.waitClosed(5000));
  });

  test('an anonymous connection may only Ping: its Cancel is UNAUTHORIZED', async () => {
    const peer = await RawPeer.connect(h.paths.socket);
    peer.send({ id: 0, type: 'Hello', protocol: 1, client: 'anon' });
    assert.equal((await peer.waitFrame((f) => f['id'] === 0))?.['identity'], 'anonymous');
    assert.equal((await answer(peer, { id: 1, type: 'Cancel', target: 5 }))['code'], 'UNAUTHORIZED');
    assert.equal((await answer(peer, { id: 2, type: 'Ping' }))['type'], 'Pong');
    peer.close();
  });

  test('SudoRun refused is an Error SUDO_DENIED naming the rule (no separation here), not a response of its own', async () => {
    const peer = await admin();
    const reply = await answer(peer, { id: 1, type: 'SudoRun', command: '/bin/true', args: [], reason: 'spec test' });
    assert.equal(reply['type'], 'Error');
    assert.equal(reply['code'], 'SUDO_DENIED');
    assert.match(String(reply['message']), /separation/);
    assert.deepEqual(reply['data'], { rule: 'no_separation' });
    peer.close();
  });

  test('an error carries the errno behind it in data (a program whose interpreter is missing)', async () => {
    const script = path.join(h.home, 'no-interpreter');
    fs.writeFileSync(script, '#!/nonexistent/interpreter\n', { mode: 0o755 });
    const peer = await admin();
    const reply = await answer(peer, { id: 1, type: 'Run', command: script, args: [] });
    assert.equal(reply['type'], 'Error', JSON.stringify(reply));
    assert.equal(reply['code'], 'COMMAND_NOT_FOUND');
    assert.deepEqual(reply['data'], { errno: 'ENOENT' });
    assertDocumented(reply, responseFields('Error'), 'Error', ['code', 'message']);
    peer.close();
  });

  test('Run: a relative command path is BAD_ARGUMENT; a bare name is looked up', async () => {
    const peer = await admin();
    assert.equal((await answer(peer, { id: 1, type: 'Run', command: './true', args: [] }))['code'], 'BAD_ARGUMENT');
    assert.equal((await answer(peer, { id: 2, type: 'Run', command: 'true', args: [] }))['type'], 'CommandResult');
    peer.close();
  });

  test('an answer too large for a frame is FRAME_TOO_LARGE with the request id, and the connection stays open', async () => {
    const peer = await admin();
    // Exactly the output cap (16 MiB): allowed, but the CommandResult around it passes the frame maximum.
    const reply = await answer(
      peer,
      { id: 1, type: 'Run', command: '/usr/bin/head', args: ['-c', String(16 * 1024 * 1024), '/dev/zero'] },
      60_000,
    );
    assert.equal(reply['type'], 'Error');
    assert.equal(reply['code'], 'FRAME_TOO_LARGE', String(reply['message']));
    assert.equal((await answer(peer, { id: 2, type: 'Ping' }))['type'], 'Pong');
    assert.equal(peer.closed, false);
    peer.close();
  });
});
