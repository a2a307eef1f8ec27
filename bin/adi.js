#!/usr/bin/env node
// The `adi` command. It loads the bundled CLI (one file, built by `npm run build`), so start-up reads
// as little as possible.
import '../dist/adi.mjs';
