// Bundle the CLI so `adi` starts by reading as little as possible (docs/performance.md has the figures).
//
// - dist/cli/<group>-<command>.cjs: one self-contained CommonJS file per two-word command ("daemon
//   status" -> daemon-status.cjs) holding the entry, main.ts and that command only. bin/adi.js (itself
//   CommonJS) requires it directly. CommonJS on purpose: an ES module entry makes Node load and run its
//   ESM loader, and importing a built-in such as `node:fs` as an ES module builds its whole namespace,
//   which loads fs/promises and with it readline and the stream stack. Measured, that was about 20 ms
//   of a 50 ms overhead over `node -e 0` on the benchmark machine. The words come from src/cli/table.ts;
//   a command it no longer lists, or one this script cannot parse, simply has no file and goes through
//   dist/adi.mjs.
// - dist/adi.mjs: every command, each in a chunk loaded on demand (code splitting, which esbuild does
//   for ES modules only). bin/adi.js imports it for --help, --version, one-word commands and anything
//   unusual.
//
// Both: the runtime dependency (smol-toml) is bundled too, so no package resolution happens at
// start-up; whitespace and syntax are minified, names are kept, so an internal error's stack is
// readable.
// The library entry (dist/src/index.js) is tsc's output, unbundled.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: true,
  logLevel: 'warning',
};

// Chunk names carry a content hash: clear the old ones so dist/ holds only what this build made.
fs.rmSync('dist/chunks', { recursive: true, force: true });
fs.rmSync('dist/cli', { recursive: true, force: true });

await build({
  ...common,
  entryPoints: { adi: 'src/cli/entry.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  });

/**
 * In the file of one command, table.ts's dynamic imports of the other commands become a module that
 * fails loudly. They are never reached: bin/adi.js picks the file by the same two words main.ts
 * dispatches on.
 */
function onlyCommand(words, module) {
  return {
    name: 'only-command',
    setup(b) {
      b.onResolve({ filter: /^\.\/commands\/[a-z0-9-]+\.js$/ }, (args) => {
        if (args.kind !== 'dynamic-import' || path.basename(args.importer) !== 'table.ts') return undefined;
        if (args.path === `./commands/${module}.js`) return undefined;
        return { path: args.path, namespace: 'other-command' };
      });
      b.onLoad({ filter: /.*/, namespace: 'other-command' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`adi: internal error: the '${words}' bundle was asked for ${args.path}; run the build again`)});`,
        loader: 'js',
      }));
    },
  };
}

// `'daemon status': { ..., load: () => import('./commands/daemon-status.js') }`
const tableSource = fs.readFileSync('src/cli/table.ts', 'utf8');
const commands = [...tableSource.matchAll(/'([a-z]+) ([a-z-]+)':\s*\{[^{}]*?import\('\.\/commands\/([a-z0-9-]+)\.js'\)/g)].map((m) => ({
  words: `${m[1]} ${m[2]}`,
  file: `${m[1]}-${m[2]}`,
  module: m[3],
}));
await Promise.all(
  commands.map(({ words, file, module }) =>
    build({
      ...common,
      format: 'cjs',
      // version.ts finds package.json from its own location.
      define: { 'import.meta.url': '__adiModuleUrl' },
      banner: { js: 'const __adiModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
      entryPoints: { [file]: 'src/cli/entry.ts' },
      outdir: 'dist/cli',
      outExtension: { '.js': '.cjs' },
      plugins: [onlyCommand(words, module)],
    }),
  ),
);
