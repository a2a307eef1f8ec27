// Bundle the CLI so `adi` starts by reading as little as possible (docs/performance.md has the figures).
//
// - dist/cli/<group>-<command>.cjs: one self-contained CommonJS file per two-word command ("daemon
//   status" -> daemon-status.cjs) holding the entry, main.ts and that command only. bin/adi.js (itself
//   CommonJS) requires it directly. CommonJS on purpose: an ES module entry makes Node load and run its
//   ESM loader, and importing a built-in such as `node:fs` as an ES module builds its whole namespace,
//   which loads fs/promises and with it readline and the stream stack. Measured, that was about 20 ms
//   of a 50 ms overhead over `node -e 0` on the benchmark machine. The commands are those of the
//   command table (src/cli/table.ts, as tsc built it: `npm run build` runs tsc first); the command
//   "a b" lives in src/cli/commands/a-b.ts.
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
import { pathToFileURL } from 'node:url';

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
 * In the file of one command, table.ts's dynamic imports of the other commands, and main.ts's of the
 * completion engine, become a module that fails loudly. They are never reached: bin/adi.js picks the
 * file by the same two words main.ts dispatches on, and sends `adi __complete` to dist/adi.mjs.
 */
function onlyCommand(words, module) {
  return {
    name: 'only-command',
    setup(b) {
      b.onResolve({ filter: /^\.\/(commands\/[a-z0-9-]+|complete)\.js$/ }, (args) => {
        if (args.kind !== 'dynamic-import') return undefined;
        const importer = path.basename(args.importer);
        if (importer === 'table.ts' && args.path === `./commands/${module}.js`) return undefined;
        if (importer !== 'table.ts' && importer !== 'main.ts') return undefined;
        return { path: args.path, namespace: 'other-command' };
      });
      b.onLoad({ filter: /.*/, namespace: 'other-command' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`adi: internal error: the '${words}' bundle was asked for ${args.path}; run the build again`)});`,
        loader: 'js',
      }));
    },
  };
}

const { COMMANDS } = await import(pathToFileURL(path.resolve('dist/src/cli/table.js')).href);
const commands = Object.keys(COMMANDS).map((words) => {
  const file = words.replace(' ', '-');
  if (!/^[a-z]+-[a-z][a-z-]*$/.test(file))
    throw new Error(`bundle: the command '${words}' is not two words bin/adi.js can find`);
  return { words, file, module: file };
});
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
