// Process entry of the bundled CLI (dist/adi.mjs).
import { packageVersion } from '../core/version.js';
import type { CliIO } from './command.js';
import { main } from './main.js';

// The streams are looked up when a command first uses them: creating process.stdin (and stderr) costs
// start-up time (a tty or pipe handle, readline helpers) that most commands never need.
const io: CliIO = {
  get stdout() {
    return process.stdout;
  },
  get stderr() {
    return process.stderr;
  },
  get stdin() {
    return process.stdin;
  },
  env: process.env,
};

main(process.argv.slice(2), io, packageVersion).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`adi: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
