// How many source files `adi daemon start NAME -- CMD` crosses from bin/adi.js to the spawn of CMD:
// the files on its call chain. The CLI and the daemon run with test/fixtures/call-chain.cjs preloaded,
// which records the stack at the CLI's write of the request and at the daemon's spawn, each followed
// back through awaits and callbacks (source maps turn bundle positions into src/ files). The daemon's
// chain is cut where the socket's data event began: before it lies the daemon's own start-up.
// ARCHITECTURE.md walks the same path.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { FIXTURES, ROOT, adi, tempHome } from '../helpers/env.js';
import { startDaemon } from '../helpers/daemon.js';

const h = tempHome();
after(() => h.cleanup());

/** The repository files named in a recorded chain, in the order they first appear. */
function filesOf(chain: string): string[] {
  const files: string[] = [];
  for (const m of chain.matchAll(/\(?(\/[^\s():]+):\d+:\d+\)?$/gm)) {
    const file = path.relative(ROOT, m[1] as string);
    if (file.startsWith('..') || file.startsWith('test/') || files.includes(file)) continue;
    files.push(file);
  }
  return files;
}

/** The chains recorded under one tag. */
function chains(text: string, tag: string): string[] {
  return text
    .split(/^=== /m)
    .filter((c) => c.startsWith(`${tag} `))
    .map((c) => c.slice(c.indexOf('\n') + 1));
}

test('adi daemon start NAME -- CMD crosses at most 20 source files from bin/adi.js to the spawn', async (t) => {
  const out = path.join(h.home, 'chains.txt');
  const marker = path.join(h.home, 'sleep-marker');
  fs.symlinkSync('/bin/sleep', marker);
  const env = {
    ...h.env,
    NODE_OPTIONS: `--enable-source-maps --require ${path.join(FIXTURES, 'call-chain.cjs')}`,
    ADI_TRACE_OUT: out,
    ADI_TRACE_SPAWN: marker,
  };
  await startDaemon(env);
  fs.rmSync(out, { force: true });
  const r = await adi(['daemon', 'start', 'web', '--', marker, '100'], env);
  assert.equal(r.code, 0, r.stderr);
  const text = fs.readFileSync(out, 'utf8');

  const [cliChain] = chains(text, 'write');
  const [spawnChain] = chains(text, 'spawn');
  assert.ok(cliChain !== undefined && spawnChain !== undefined, text.slice(0, 2000));
  const request = spawnChain.slice(0, spawnChain.search(/\(node:events:/) >>> 0);
  const cli = filesOf(cliChain);
  const daemon = filesOf(request);
  const all = [...new Set([...cli, ...daemon])];
  t.diagnostic(`CLI (${cli.length}): ${cli.join(' ')}`);
  t.diagnostic(`daemon (${daemon.length}): ${daemon.join(' ')}`);
  // The trace itself works: both ends of the path are in it.
  for (const file of ['bin/adi.js', 'src/client/connection.ts', 'src/server/connection.ts', 'src/services/runtime.ts'])
    assert.ok(all.includes(file), `${file} is on the chain: ${all.join(' ')}`);
  assert.ok(all.length <= 20, `${all.length} files: ${all.join(' ')}`);
});
