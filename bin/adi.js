#!/usr/bin/env node
// The `adi` command. A two-word command ("daemon status") loads its own bundle, dist/cli/<a>-<b>.mjs:
// one file holding just that command (see scripts/bundle.mjs). Everything else (help, --version, a
// one-word command, a typo) loads dist/adi.mjs, which has every command in chunks loaded on demand.
import { existsSync } from 'node:fs';

const [group, command] = process.argv.slice(2);
const own = group !== undefined && command !== undefined && /^[a-z]+$/.test(group) && /^[a-z][a-z-]*$/.test(command)
  ? new URL(`../dist/cli/${group}-${command}.mjs`, import.meta.url)
  : null;
await import(own !== null && existsSync(own) ? own.href : '../dist/adi.mjs');
