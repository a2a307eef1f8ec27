// `npm test`: the build and the lint (oxlint, oxfmt, the layer check, knip) side by side: neither needs
// the other's output. Then the tests, on what was built. Each step's output is printed whole when it
// ends, so they do not interleave; any failure fails the run, after both have ended.
import { spawn, spawnSync } from 'node:child_process';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// Every step is a node process or several, and none makes a TLS connection: without
// NODE_EXTRA_CA_CERTS they do not each parse a certificate file at start-up (see run-tests.mjs).
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

function run(script) {
  return new Promise((resolve) => {
    const child = spawn(npm, ['run', '--silent', script], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const out = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => out.push(d));
    const began = Date.now();
    child.on('close', (code) => {
      process.stdout.write(
        `> npm run ${script}: ${code === 0 ? 'ok' : `failed (${code})`} in ${((Date.now() - began) / 1000).toFixed(1)} s\n`,
      );
      process.stdout.write(Buffer.concat(out));
      resolve(code ?? 1);
    });
  });
}

const codes = await Promise.all([run('build'), run('lint')]);
const failed = codes.find((c) => c !== 0);
if (failed !== undefined) process.exit(failed);
const result = spawnSync(process.execPath, ['scripts/run-tests.mjs', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env,
});
process.exit(result.status ?? 1);
