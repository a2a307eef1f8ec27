#!/usr/bin/env node
// The `adi` command. A two-word command ("daemon status") loads its own bundle, dist/cli/<a>-<b>.cjs:
// one file holding just that command (see scripts/bundle.mjs). Everything else (help, --version, a
// one-word command, a typo) imports dist/adi.mjs, which has every command in chunks loaded on demand.
// This file is CommonJS (bin/package.json says so): an ES module entry would make Node start its ESM
// loader before the first line of the command runs.
'use strict';
const { existsSync } = require('node:fs');
const path = require('node:path');

const [group, command] = process.argv.slice(2);
const own =
  group !== undefined && command !== undefined && /^[a-z]+$/.test(group) && /^[a-z][a-z-]*$/.test(command)
    ? path.join(__dirname, '..', 'dist', 'cli', `${group}-${command}.cjs`)
    : null;
if (own !== null && existsSync(own)) {
  require(own);
} else {
  import('../dist/adi.mjs').catch((err) => {
    process.stderr.write(
      `adi: cannot load the CLI (${err instanceof Error ? err.message : String(err)}); run 'npm run build'\n`,
    );
    process.exitCode = 1;
  });
}
