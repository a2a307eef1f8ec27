// `npm test`: the build, eslint and the other checks (prettier, dependency-cruiser, knip) side by side:
// each is one busy process and none needs another's output. Then the tests, on what was built. Each
// step's output is printed whole when it ends, so they do not interleave; any failure fails the run,
// after all three have ended.
import { spawn, spawnSync } from 'node:child_process';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(script) {
  return new Promise((resolve) => {
    const child = spawn(npm, ['run', '--silent', script], { stdio: ['ignore', 'pipe', 'pipe'] });
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

const codes = await Promise.all([run('build'), run('lint:eslint'), run('lint:other')]);
const failed = codes.find((c) => c !== 0);
if (failed !== undefined) process.exit(failed);
const result = spawnSync(process.execPath, ['scripts/run-tests.mjs', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
