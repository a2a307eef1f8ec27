// Hostile plugin packages through the real `adi plugin install`: a package's own npm configuration
// never runs anything (the `.npmrc` `git=./g.sh` attack, an absolute helper, git+file), non-registry
// dependencies are refused naming them, and the package's files are checked (links, special files,
// set-uid, hard links, depth, size) before anything is installed. Run as root (CI) this also shows
// that npm and tar run as the unprivileged install account, not as root.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { copyChecked } from '../../src/plugins/tree.js';
import { adi, type TempHome } from '../helpers/env.js';
import { pluginHome, removeStageUser, stageSkip, tarPack, writePlugin } from './util.js';

const STAGE_USER = 'adi-itest-host';
const IS_ROOT = process.getuid?.() === 0;
/** For the tests that run npm or tar as the install account. */
const skip = stageSkip();
if (skip !== false) console.log(`# hostile-package tests that fetch or unpack skipped: ${skip}`);

let h: TempHome | null = null;
const shared: string[] = [];
function home(): TempHome {
  h = pluginHome(STAGE_USER);
  return h;
}
/** A folder other users can read (the install account must, for a file: dependency). */
function sharedDir(): string {
  const d = fs.mkdtempSync(path.join('/tmp', 'adi-host-'));
  fs.chmodSync(d, 0o755);
  shared.push(d);
  return d;
}
void afterEach(async () => {
  await h?.cleanup();
  h = null;
  for (const d of shared.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
void after(() => removeStageUser(STAGE_USER));

function nothingInstalled(t: TempHome): void {
  const left = fs.existsSync(t.paths.pluginsDir) ? fs.readdirSync(t.paths.pluginsDir) : [];
  assert.deepEqual(left, [], 'nothing installed, no staging left');
}

/**
 * The attack: a plugin whose `.npmrc` makes npm's git a script of the package, and a git dependency
 * that makes npm call it. `helper` is what `git=` names; the script writes `id` to `marker`.
 */
function gitHelperPlugin(dir: string, marker: string, helper: string | null, dep: string): string {
  writePlugin(dir, { name: 'evil', service: null, bin: null, extra: { dependencies: { 'left-pad': dep } } });
  const script = helper ?? path.join(dir, 'g.sh');
  fs.writeFileSync(script, `#!/bin/sh\nid > ${marker}\nexit 1\n`, { mode: 0o755 });
  fs.chmodSync(script, 0o755);
  fs.writeFileSync(path.join(dir, '.npmrc'), `git=${helper ?? './g.sh'}\n`);
  return dir;
}

void describe('hostile plugin packages', () => {
  void it('.npmrc git=./g.sh with a git+ssh dependency: refused naming the dependency, nothing runs or is installed', async () => {
    const t = home();
    const marker = path.join(sharedDir(), 'marker');
    const src = gitHelperPlugin(path.join(t.home, 'evil'), marker, null, 'git+ssh://git@example.invalid/left-pad.git');
    const r = await adi(['plugin', 'install', src], t.env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /dependencies that do not come from the npm registry:\n {2}dependencies\.left-pad: "git\+ssh:\/\/git@example\.invalid\/left-pad\.git"/,
    );
    assert.equal(fs.existsSync(marker), false, 'g.sh never ran');
    nothingInstalled(t);
  });

  void it(
    "with --allow-non-registry-deps npm still uses only adi's config: the package's git helper never runs",
    { skip },
    async () => {
      const t = home();
      const marker = path.join(sharedDir(), 'marker');
      const src = gitHelperPlugin(
        path.join(t.home, 'evil'),
        marker,
        null,
        'git+ssh://git@example.invalid/left-pad.git',
      );
      const r = await adi(['plugin', 'install', src, '--allow-non-registry-deps'], t.env, { timeoutMs: 180_000 });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /Fetching the dependencies of evil \(left-pad@git\+ssh:\/\/git@example\.invalid\/left-pad\.git\) with npm as \S+ failed/,
      );
      assert.match(r.stdout, new RegExp(`npm as ${IS_ROOT ? STAGE_USER : os.userInfo().username}, no scripts`));
      assert.equal(fs.existsSync(marker), false, 'g.sh never ran');
      nothingInstalled(t);
    },
  );

  void it('an absolute helper path (git=/abs/g.sh, runnable by anyone) never runs either', { skip }, async () => {
    const t = home();
    const dir = sharedDir();
    const marker = path.join(dir, 'marker');
    const helper = path.join(dir, 'g.sh');
    const src = gitHelperPlugin(
      path.join(t.home, 'evil'),
      marker,
      helper,
      'git+ssh://git@example.invalid/left-pad.git',
    );
    const refused = await adi(['plugin', 'install', src], t.env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /dependencies\.left-pad: "git\+ssh:/);
    const allowed = await adi(['plugin', 'install', src, '--allow-non-registry-deps'], t.env, { timeoutMs: 180_000 });
    assert.equal(allowed.code, 2, allowed.stdout + allowed.stderr);
    assert.match(allowed.stderr, /Fetching the dependencies of evil \(left-pad@git\+ssh:/);
    assert.equal(fs.existsSync(marker), false, 'the absolute helper never ran');
    nothingInstalled(t);
  });

  void it('a git+file:// dependency is refused naming it; the helper never runs', async () => {
    const t = home();
    const dir = sharedDir();
    const marker = path.join(dir, 'marker');
    const repo = path.join(dir, 'left-pad.git');
    fs.mkdirSync(repo);
    const src = gitHelperPlugin(path.join(t.home, 'evil'), marker, null, `git+file://${repo}`);
    const r = await adi(['plugin', 'install', src], t.env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`dependencies\\.left-pad: "git\\+file://${repo.replaceAll('/', '\\/')}"`));
    assert.equal(fs.existsSync(marker), false);
    nothingInstalled(t);
  });

  void it('file:, link:, URL, alias, GitHub and tarball specs are refused, each named', async () => {
    const t = home();
    const deps = {
      a: 'file:../a',
      b: 'link:../b',
      c: 'https://example.invalid/c.tgz',
      d: 'npm:left-pad@1.3.0',
      e: 'user/repo',
      f: './f',
      g: 'g.tgz',
      ok: '^1.2.3 || 2.x',
    };
    const src = writePlugin(path.join(t.home, 'p'), {
      name: 'specs',
      service: null,
      bin: null,
      extra: { dependencies: deps, optionalDependencies: { h: 'github:u/h' } },
    });
    const r = await adi(['plugin', 'install', src], t.env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    for (const n of ['a', 'b', 'c', 'd', 'e', 'f', 'g'])
      assert.match(r.stderr, new RegExp(` {2}dependencies\\.${n}: `), n);
    assert.match(r.stderr, / {2}optionalDependencies\.h: "github:u\/h"/);
    assert.doesNotMatch(r.stderr, /dependencies\.ok:/);
    nothingInstalled(t);
  });

  void it(
    'registry-free dependency install (a file: .tgz, allowed): no scripts, no binding.gyp build, no shrinkwrap of the package',
    { skip },
    async () => {
      const t = home();
      const dir = sharedDir();
      const marker = path.join(dir, 'marker');
      const depSrc = path.join(dir, 'depsrc');
      fs.mkdirSync(depSrc);
      fs.writeFileSync(
        path.join(depSrc, 'package.json'),
        JSON.stringify({
          name: 'tiny-dep',
          version: '1.0.0',
          main: 'index.js',
          scripts: { preinstall: `id > ${marker}`, install: `id > ${marker}`, postinstall: `id > ${marker}` },
        }),
      );
      fs.writeFileSync(path.join(depSrc, 'index.js'), 'module.exports = 42;\n');
      // node-gyp would expand <!(...) by running it: npm runs `node-gyp rebuild` for a binding.gyp
      // unless scripts are off.
      fs.writeFileSync(
        path.join(depSrc, 'binding.gyp'),
        JSON.stringify({ variables: { x: `<!(id > ${marker})` }, targets: [{ target_name: 'x', sources: [] }] }),
      );
      const tgz = tarPack(depSrc, dir);
      fs.chmodSync(tgz, 0o644);
      const src = writePlugin(path.join(t.home, 'p'), {
        name: 'withdep',
        service: null,
        bin: null,
        extra: { dependencies: { 'tiny-dep': `file:${tgz}` } },
      });
      fs.writeFileSync(path.join(src, '.npmrc'), `git=${path.join(dir, 'g.sh')}\nignore-scripts=false\n`);
      // Neither a shrinkwrap nor a .yarnrc of the package is read: this one would send npm to git.
      fs.writeFileSync(
        path.join(src, 'npm-shrinkwrap.json'),
        JSON.stringify({
          name: 'withdep',
          version: '1.0.0',
          lockfileVersion: 3,
          requires: true,
          packages: {
            '': { name: 'withdep', version: '1.0.0', dependencies: { 'tiny-dep': `file:${tgz}` } },
            'node_modules/tiny-dep': { version: '1.0.0', resolved: 'git+ssh://git@example.invalid/tiny.git' },
          },
        }),
      );
      fs.writeFileSync(path.join(src, '.yarnrc'), `yarn-path "${path.join(dir, 'g.sh')}"\n`);
      const r = await adi(['plugin', 'install', src, '--allow-non-registry-deps'], t.env, { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const plugin = path.join(t.paths.pluginsDir, 'withdep');
      assert.equal(
        fs.readFileSync(path.join(plugin, 'node_modules', 'tiny-dep', 'index.js'), 'utf8'),
        'module.exports = 42;\n',
      );
      assert.equal(fs.existsSync(marker), false, 'no install script of the dependency ran');
      assert.equal(fs.existsSync(path.join(plugin, 'node_modules', '.bin')), false, 'no bin links');
      const req = spawnSync(process.execPath, ['-e', "console.log(require('tiny-dep'))"], {
        cwd: plugin,
        encoding: 'utf8',
      });
      assert.equal(req.stdout.trim(), '42', req.stderr);
    },
  );

  void it('workspaces and bundleDependencies are refused naming the field', async () => {
    const t = home();
    for (const [field, value] of [
      ['workspaces', ['packages/*']],
      ['bundleDependencies', ['x']],
      ['bundledDependencies', true],
    ] as const) {
      const src = writePlugin(path.join(t.home, field), {
        name: 'ws',
        service: null,
        bin: null,
        extra: { [field]: value },
      });
      const r = await adi(['plugin', 'install', src], t.env);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`field "${field}": `));
    }
    nothingInstalled(t);
  });

  void it('links, special files, set-uid files, hard links and too-deep trees in a folder are refused naming the file', async () => {
    const t = home();
    const cases: Array<[string, (dir: string) => void, RegExp]> = [
      ['symlink', (d) => fs.symlinkSync('/etc/passwd', path.join(d, 'passwd')), /contains "passwd", a symbolic link/],
      ['dirlink', (d) => fs.symlinkSync('/etc', path.join(d, 'etc')), /contains "etc", a symbolic link/],
      ['fifo', (d) => spawnSync('mkfifo', [path.join(d, 'pipe')]), /contains "pipe", a special file/],
      [
        'setuid',
        (d) => {
          fs.writeFileSync(path.join(d, 'suid'), '#!/bin/sh\n');
          fs.chmodSync(path.join(d, 'suid'), 0o4755);
        },
        /contains "suid", a set-uid or set-gid file/,
      ],
      [
        'hardlink',
        (d) => {
          fs.writeFileSync(path.join(d, 'a.txt'), 'x');
          fs.linkSync(path.join(d, 'a.txt'), path.join(d, 'b.txt'));
        },
        /contains "a\.txt", a hard link/,
      ],
      [
        'deep',
        (d) => fs.mkdirSync(path.join(d, ...Array.from({ length: 40 }, () => 'd')), { recursive: true }),
        /a folder nested more than 32 deep/,
      ],
      [
        'big',
        (d) => {
          const fd = fs.openSync(path.join(d, 'big.bin'), 'w');
          fs.ftruncateSync(fd, 200 * 1024 * 1024); // sparse: costs no disk
          fs.closeSync(fd);
        },
        /contains "big\.bin", 209715200 bytes long \(at most 134217728 per file\)/,
      ],
    ];
    for (const [name, make, expected] of cases) {
      const src = writePlugin(path.join(t.home, name), { name: 'files', service: null, bin: null });
      make(src);
      const r = await adi(['plugin', 'install', src], t.env);
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, expected, name);
      nothingInstalled(t);
    }
  });

  void it(
    'a .tgz with a symbolic link, a hard link or a name outside the package is refused from its listing',
    { skip },
    async () => {
      const t = home();
      const cases: Array<[string, (dir: string) => string[], RegExp]> = [
        [
          'symlink',
          (d) => {
            fs.symlinkSync('/etc/shadow', path.join(d, 'package', 'shadow'));
            return ['package'];
          },
          /contains "package\/shadow -> \/etc\/shadow", a symbolic link/,
        ],
        [
          'hardlink',
          (d) => {
            fs.writeFileSync(path.join(d, 'package', 'a'), 'x');
            fs.linkSync(path.join(d, 'package', 'a'), path.join(d, 'package', 'b'));
            return ['package'];
          },
          /a hard link/,
        ],
        [
          'dotdot',
          (d) => {
            fs.writeFileSync(path.join(d, 'escape.js'), 'x');
            return ['package', '--transform', 's,^escape.js,package/../../escape.js,', 'escape.js'];
          },
          /a name outside the package/,
        ],
      ];
      for (const [name, make, expected] of cases) {
        const d = path.join(t.home, `tar-${name}`);
        writePlugin(path.join(d, 'package'), { name: 'tarred', service: null, bin: null });
        const members = make(d);
        const tgz = path.join(t.home, `${name}.tgz`);
        const tar = spawnSync('tar', ['-czf', tgz, '-C', d, ...members], { encoding: 'utf8' });
        assert.equal(tar.status, 0, tar.stderr);
        const r = await adi(['plugin', 'install', tgz], t.env, { timeoutMs: 60_000 });
        assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, expected, name);
        nothingInstalled(t);
      }
    },
  );

  void it('the copy stops at its bounds: number of entries and total bytes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-bounds-'));
    try {
      const src = path.join(dir, 'src');
      fs.mkdirSync(src);
      for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(src, `f${i}`), 'x'.repeat(100));
      const limits = { maxEntries: 10, maxBytes: 1_000_000, maxFileBytes: 1000, maxDepth: 4 };
      assert.throws(
        () => copyChecked(src, path.join(dir, 'a'), { what: 'the package', limits }),
        /the package has more than 10 files and folders/,
      );
      assert.throws(
        () =>
          copyChecked(src, path.join(dir, 'b'), {
            what: 'the package',
            limits: { ...limits, maxEntries: 100, maxBytes: 1000 },
          }),
        /the package is larger than 1000 bytes/,
      );
      const ok = copyChecked(src, path.join(dir, 'c'), {
        what: 'the package',
        limits: { ...limits, maxEntries: 12, maxBytes: 1200 },
      });
      assert.deepEqual(ok, { entries: 12, bytes: 1200 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
