// Run the compiled tests with node's test runner. `--stress` runs the stress and fault suite
// (test/stress/) instead of the regular tests. Files are found here because Node 20's --test takes
// no glob patterns.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const stress = process.argv.includes('--stress');
const root = path.resolve('dist/test');

/** The source of a compiled test file: dist/test/a/b.test.js -> test/a/b.test.ts. */
function sourceOf(file) {
  return path.join('test', path.relative(root, file)).replace(/\.js$/, '.ts');
}

function collect(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'fixtures' || entry.name === 'helpers') continue;
      if (!stress && entry.name === 'stress') continue;
      out.push(...collect(full));
    } else if (entry.name.endsWith('.test.js') && fs.existsSync(sourceOf(full))) {
      // tsc does not remove what it compiled from a test since moved or deleted: only files whose
      // source still exists run.
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

// Longest first: with a fixed number of files at a time, a long file started last would run on alone
// at the end. The times are those of this checkout's last run (recorded by scripts/test-times-reporter.mjs),
// else those committed in scripts/test-times.json (a copy of such a record, for a fresh clone); a file
// in neither (a new one) starts first.
const timesFile = path.resolve('node_modules/.cache/adi/test-times.json');
function readTimes(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}
const times = readTimes(timesFile) ?? readTimes(path.resolve('scripts/test-times.json')) ?? {};
const timeOf = (file) => times[sourceOf(file)] ?? Infinity;
files.sort((a, b) => timeOf(b) - timeOf(a) || a.localeCompare(b));

// The regular files run several at once: each has its own temporary HOME, data dir, sockets and
// users, and most of their time is spent waiting on real processes, not on the CPU. The stress suite
// runs one file at a time because it measures memory and latency under load it makes itself.
// ADI_TEST_CONCURRENCY overrides the number (1 reproduces a serial run).
const concurrency = stress ? 1 : Number(process.env.ADI_TEST_CONCURRENCY ?? Math.max(2, os.availableParallelism() + 1));
const reporters = [`--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`, '--test-reporter-destination=stdout'];
if (!stress) {
  fs.mkdirSync(path.dirname(timesFile), { recursive: true });
  reporters.push(
    `--test-reporter=${path.resolve('scripts/test-times-reporter.mjs')}`,
    `--test-reporter-destination=${timesFile}`,
  );
}
// NODE_EXTRA_CA_CERTS makes every node process parse that certificate file before its first line runs
// (80 ms of CPU per start on the CI machine, where it names the system bundle). The tests start
// hundreds of node processes (each `adi` command, each daemon, the fixtures) and none of them makes a
// TLS connection, so the tests, and everything they start, run without it.
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...reporters, ...files], {
  stdio: 'inherit',
  env,
});
process.exit(result.status ?? 1);
