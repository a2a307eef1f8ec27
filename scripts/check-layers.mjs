// The layer rule of src/ (ARCHITECTURE.md draws it): each folder may import itself and the folders
// listed for it in MAY_IMPORT, nothing else, so the arrows point one way, down to `core`; and no two
// modules import each other, directly or round a loop. `npm test` runs this with the other checks.
//
//   cli -> client -> protocol/wire <- server -> plugins -> services -> logs -> system -> core
//                                            -> executor ------------------^
//
// Imports are read with oxc-parser (a real parser, so a comment that looks like an import does not
// count). Every import counts for the layers: static, type-only (a type from a higher layer couples as
// much as a value), lazy `import()` and a type's `import('...')`. Cycles are looked for among the
// static imports only: the command table loads each command lazily, and `adi completion` reads the
// table. Usage: node scripts/check-layers.mjs [--root DIR] (DIR holds src/; default: here).
import fs from 'node:fs';
import path from 'node:path';
import { parseSync } from 'oxc-parser';

const MAY_IMPORT = {
  cli: ['client', 'server', 'plugins', 'services', 'executor', 'logs', 'protocol', 'wire', 'system', 'core'],
  client: ['protocol', 'wire', 'core'],
  server: ['plugins', 'services', 'executor', 'logs', 'protocol', 'wire', 'system', 'core'],
  plugins: ['services', 'protocol', 'system', 'core'],
  services: ['logs', 'protocol', 'system', 'core'],
  executor: ['protocol', 'system', 'core'],
  logs: ['protocol', 'system', 'core'],
  protocol: ['core'],
  wire: ['protocol', 'core'],
  system: ['core'],
  core: [],
};
/** What the package entry (src/index.ts) may re-export: the client's surface. */
const INDEX_MAY_IMPORT = ['client', 'protocol', 'core'];

const rootArg = process.argv.indexOf('--root');
const root = path.resolve(rootArg >= 0 ? (process.argv[rootArg + 1] ?? '.') : '.');
const src = path.join(root, 'src');

function walk(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

const rel = (file) => path.relative(root, file).split(path.sep).join('/');
/** The layer of a file: its first folder under src/, or null for a file directly in src/. */
const layerOf = (file) => {
  const parts = path.relative(src, file).split(path.sep);
  return parts.length > 1 ? parts[0] : null;
};

const problems = [];
/** file -> the src files it imports statically */
const graph = new Map();

for (const file of walk(src)) {
  const text = fs.readFileSync(file, 'utf8');
  const parsed = parseSync(file, text);
  if (parsed.errors.length > 0) {
    problems.push(`${rel(file)}: cannot parse: ${parsed.errors[0].message}`);
    continue;
  }
  const relative = (s) => typeof s === 'string' && s.startsWith('.');
  const staticSpecs = [
    ...parsed.module.staticImports.map((i) => i.moduleRequest.value),
    ...parsed.module.staticExports.flatMap((e) => e.entries.map((x) => x.moduleRequest?.value)),
  ].filter(relative);
  // import('...') in code or in a type, found in the text with the comments blanked out.
  let code = text;
  for (const c of parsed.comments) code = code.slice(0, c.start) + ' '.repeat(c.end - c.start) + code.slice(c.end);
  const lazySpecs = [...code.matchAll(/\bimport\(\s*(['"])([^'"]+)\1\s*\)/g)].map((m) => m[2]).filter(relative);
  const resolveAll = (specs) => {
    const out = [];
    for (const spec of new Set(specs)) {
      // NodeNext: a relative import names the compiled file, './x.js' for './x.ts'.
      const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      if (!target.startsWith(src + path.sep)) continue;
      if (!fs.existsSync(target)) {
        problems.push(`${rel(file)}: imports ${spec}, which is not a file under src/`);
        continue;
      }
      out.push(target);
    }
    return out;
  };
  const staticTargets = resolveAll(staticSpecs);
  graph.set(file, staticTargets);
  const targets = [...new Set([...staticTargets, ...resolveAll(lazySpecs)])];

  const from = layerOf(file);
  const isIndex = rel(file) === 'src/index.ts';
  if (from === null && !isIndex) {
    problems.push(`${rel(file)}: every source file lives in a layer folder (${Object.keys(MAY_IMPORT).join(', ')})`);
    continue;
  }
  if (from !== null && !(from in MAY_IMPORT)) {
    problems.push(`${rel(file)}: src/${from}/ is not a layer; add it to MAY_IMPORT in scripts/check-layers.mjs`);
    continue;
  }
  const allowed = isIndex ? INDEX_MAY_IMPORT : [from, ...MAY_IMPORT[from]];
  for (const target of targets) {
    const to = layerOf(target);
    // src/index.ts (the package entry, outside every layer) is imported by no module.
    if (to === null ? !isIndex : !allowed.includes(to)) {
      const who = isIndex ? 'src/index.ts' : `src/${from}/`;
      const may = isIndex ? INDEX_MAY_IMPORT : MAY_IMPORT[from];
      problems.push(
        `${rel(file)} imports ${rel(target)}: ${who} may import only ${may.join(', ') || 'itself'} (see ARCHITECTURE.md)`,
      );
    }
  }
}

// Cycles: the strongly connected components of the static import graph (Tarjan's algorithm).
let next = 0;
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
function connect(v) {
  index.set(v, next);
  low.set(v, next);
  next++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!index.has(w)) {
      connect(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v), index.get(w)));
    }
  }
  if (low.get(v) === index.get(v)) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) {
      problems.push(
        `import cycle: ${component.map(rel).sort().join(', ')}: merge them, or move what both need further down`,
      );
    }
  }
}
for (const v of graph.keys()) if (!index.has(v)) connect(v);

if (problems.length > 0) {
  process.stderr.write(`layer check: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}\n`).join('')}`);
  process.exit(1);
}
