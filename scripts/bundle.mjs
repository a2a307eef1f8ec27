// Bundle the CLI into one ESM file (dist/adi.mjs) so `adi` starts by reading one file, not dozens.
// Each command module stays a separate chunk loaded on demand (code splitting), so a command loads
// only what it uses. The library entry (dist/src/index.js) is tsc's output, unbundled.
import { build } from 'esbuild';

await build({
  entryPoints: { adi: 'src/cli/entry.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
