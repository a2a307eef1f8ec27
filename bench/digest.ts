// What the approved-files check adds to a plugin's SudoRun: the installed tree is walked (one lstat
// per entry) and compared with the approved digest, files hashed again only when their metadata
// changed. Measured in this process on a plugin of the example's files plus `files` dependency
// files (2 KB each), against the checks SudoRun did before it for the same call (resolve the
// command, compile and match the approved patterns, check the binary's ownership). A second row
// shows the uncached cost (a changed file: hashed again) against the cached one.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compilePattern, matchAny } from '../src/system/patterns.js';
import { resolveCommand, untrustedReason } from '../src/system/resolve.js';
import { resolvePaths } from '../src/core/paths.js';
import { writeApproval } from '../src/plugins/approvals.js';
import { approvedFilesProblem, filesDigest, installedDigest } from '../src/plugins/digest.js';
import { ROOT } from './harness.js';
import { median, nowNs } from './stats.js';
import type { Row } from './table.js';

async function timeUs(count: number, once: () => unknown): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = nowNs();
    await once();
    samples.push((nowNs() - t0) / 1000);
  }
  return median(samples);
}

/** The longest the event loop went without a turn while `work` ran (a timer asks every 1 ms). */
async function longestBlockUs(work: () => Promise<unknown>): Promise<number> {
  let last = nowNs();
  let longest = 0;
  const timer = setInterval(() => {
    const now = nowNs();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  try {
    await work();
    const now = nowNs();
    return Math.max(longest, now - last) / 1000;
  } finally {
    clearInterval(timer);
  }
}

export async function benchDigest(files: number, samples: number): Promise<Row[]> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-bench-digest-'));
  try {
    const paths = resolvePaths({
      env: { HOME: home, ADI_USER: 'adi-nouser-bench', ADI_ROOT_USER: 'adi-nouser-bench-root' },
    });
    const dir = path.join(paths.pluginsDir, 'hello-plugin');
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ['package.json', 'cli.js', 'README.md'])
      fs.copyFileSync(path.join(ROOT, 'examples', 'hello-plugin', f), path.join(dir, f));
    const chunk = 'x'.repeat(2048);
    for (let i = 0; i < files; i++) {
      const pkg = path.join(dir, 'node_modules', `dep${Math.floor(i / 20)}`);
      fs.mkdirSync(pkg, { recursive: true });
      fs.writeFileSync(path.join(pkg, `f${i % 20}.js`), `${chunk}${i}`);
    }
    const pattern = '/usr/bin/id -u';
    writeApproval(paths, {
      plugin: 'hello-plugin',
      version: '1.0.0',
      patterns: [pattern],
      approved_at: new Date().toISOString(),
      files_digest: await filesDigest(dir),
      tree_digest: await installedDigest(dir),
    });
    if ((await approvedFilesProblem(paths, 'hello-plugin', false)) !== null)
      throw new Error('bench: the digest check refused its own plugin');

    // What SudoRun already did per call, for the same request.
    const before = (): void => {
      const file = resolveCommand('id');
      matchAny([compilePattern(pattern)], file, ['-u']);
      untrustedReason(file);
    };
    const baseline = await timeUs(samples, before);
    const cached = await timeUs(samples, () => approvedFilesProblem(paths, 'hello-plugin', false));
    const block = await longestBlockUs(() => approvedFilesProblem(paths, 'hello-plugin', false));
    // Uncached: a touched file each time (its ctime changes), so that one file is hashed again; and
    // a cold cache (every file hashed), as on the daemon's first SudoRun for the plugin.
    const touched = path.join(dir, 'cli.js');
    const uncachedOne = await timeUs(Math.min(samples, 200), () => {
      fs.utimesSync(touched, new Date(), new Date());
      return approvedFilesProblem(paths, 'hello-plugin', false);
    });
    const cold = await timeUs(Math.min(samples, 50), () => installedDigest(dir));
    const entries = files + 3;
    return [
      {
        group: 'IPC',
        metric: `SudoRun approved-files check, cached (plugin of ${entries} files)`,
        value: cached,
        unit: 'us',
        baselineLabel: "SudoRun's other checks",
        baseline,
        target: null,
        note: `one lstat per entry; a touched file ${uncachedOne.toFixed(0)} us; cold (all hashed) ${cold.toFixed(0)} us; longest event-loop block during a cached check ${block.toFixed(0)} us`,
      },
    ];
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}
