// The layer check (scripts/check-layers.mjs) that `npm test` runs: it passes on this tree and reports
// each kind of break it exists for, in a made-up tree.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/env.js';

const SCRIPT = path.join(ROOT, 'scripts', 'check-layers.mjs');

function check(root: string): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--root', root], { encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

test('this tree passes the layer check', () => {
  const r = check(ROOT);
  assert.equal(r.code, 0, r.stderr);
});

test('an upward import (static, lazy or in a type), a cycle, a stray module, an import of the entry and a bad index export each fail the check', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-layers-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const write = (file: string, text: string): void => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  };
  write('src/server/context.ts', 'export const x = 1;\n');
  write('src/core/up.ts', "import { x } from '../server/context.js';\nexport const y = x;\n");
  write('src/core/a.ts', "import type { B } from './b.js';\nexport type A = B | 1;\n");
  write('src/core/b.ts', "import type { A } from './a.js';\nexport type B = A | 2;\n");
  // A lazy import counts for the layers, not for cycles (the command table loads commands lazily).
  write('src/core/lazy.ts', "export const load = () => import('../server/context.js');\n");
  write('src/core/typed.ts', "export type C = typeof import('../server/context.js');\n");
  write('src/cli/table.ts', "export const load = () => import('./commands/x.js');\n");
  write('src/cli/commands/x.ts', "import { load } from '../table.js';\nexport const again = load;\n");
  write('src/system/entry.ts', "import '../index.js';\n");
  write('src/stray.ts', 'export const s = 1;\n');
  write('src/index.ts', "export { x } from './server/context.js';\n");
  // An import in a comment or a string is not an import.
  write('src/system/text.ts', "// import '../cli/x.js'\nexport const t = \"import '../cli/x.js'\";\n");
  const r = check(root);
  assert.equal(r.code, 1);
  const lines = r.stderr
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim());
  assert.deepEqual(lines.sort(), [
    'import cycle: src/core/a.ts, src/core/b.ts: merge them, or move what both need further down',
    'src/core/lazy.ts imports src/server/context.ts: src/core/ may import only itself (see ARCHITECTURE.md)',
    'src/core/typed.ts imports src/server/context.ts: src/core/ may import only itself (see ARCHITECTURE.md)',
    'src/core/up.ts imports src/server/context.ts: src/core/ may import only itself (see ARCHITECTURE.md)',
    'src/index.ts imports src/server/context.ts: src/index.ts may import only client, protocol, core (see ARCHITECTURE.md)',
    'src/stray.ts: every source file lives in a layer folder (cli, client, server, plugins, services, executor, logs, protocol, wire, system, core)',
    'src/system/entry.ts imports src/index.ts: src/system/ may import only core (see ARCHITECTURE.md)',
  ]);
});
