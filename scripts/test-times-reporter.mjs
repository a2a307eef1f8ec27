// A node:test reporter that records how long each test file took (the sum of its top-level tests,
// which run one after another), as JSON keyed by the file's source path (test/x/y.test.ts).
// scripts/run-tests.mjs starts the longest files first with it.
import path from 'node:path';

const root = path.resolve('dist');

export default async function* timesReporter(source) {
  const times = {};
  for await (const event of source) {
    if ((event.type !== 'test:pass' && event.type !== 'test:fail') || event.data.nesting !== 0) continue;
    const file = event.data.file;
    if (typeof file !== 'string') continue;
    const key = path.relative(root, file).replace(/\.js$/, '.ts');
    times[key] = Math.round((times[key] ?? 0) + (event.data.details?.duration_ms ?? 0));
  }
  const sorted = Object.fromEntries(Object.entries(times).sort(([a], [b]) => a.localeCompare(b)));
  yield `${JSON.stringify(sorted, null, 2)}\n`;
}
