// Run the compiled tests with node's test runner. `--stress` runs the stress and fault suite
// (test/stress/) instead of the regular tests. Files are found here because Node 20's --test takes
// no glob patterns.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const stress = process.argv.includes('--stress');
const root = path.resolve('dist/test');

function collect(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'fixtures' || entry.name === 'helpers') continue;
      if (!stress && entry.name === 'stress') continue;
      out.push(...collect(full));
    } else if (entry.name.endsWith('.test.js')) {
      out.push(full);
    }
  }
  return out;
}

const files = stress ? collect(path.join(root, 'stress')) : collect(root);
if (files.length === 0) {
  console.error('no test files found under dist/test; run the build first');
  process.exit(1);
}
// The regular files run several at once: each has its own temporary HOME, data dir, sockets and
// users, and most of their time is spent waiting on real processes, not on the CPU. The stress suite
// runs one file at a time because it measures memory and latency under load it makes itself.
// ADI_TEST_CONCURRENCY overrides the number (1 reproduces a serial run).
const concurrency = stress ? 1 : Number(process.env.ADI_TEST_CONCURRENCY ?? Math.max(2, os.availableParallelism() + 1));
const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...files.sort()], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
