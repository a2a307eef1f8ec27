// Where and as whom a package is unpacked and its dependencies fetched: never as root, never with
// anything the package chose.
//
//   who    as root: the unprivileged account `adi-install` (ADI_INSTALL_USER overrides), created on
//          first use as a locked system account with no home and no shell. Not the plugin user:
//          a running plugin service (the plugin user) could otherwise change another plugin's
//          dependencies while they are fetched. As anyone else: that user (the admin), who is not
//          privileged; what protects them is that nothing of the package runs and no configuration
//          of the package is read.
//   where  a fresh folder `<tmp>/adi-install-XXXX/work` owned by that account (mode 0700), whose
//          parent is the admin's (0711). npm's working folder and --prefix are `work/proj`, which
//          holds only a package.json adi wrote, so no `.npmrc`, lock file or workspace of the package
//          is ever found.
//   how    npm with --userconfig and --globalconfig files adi writes (registry, git, no scripts, no
//          bin links, a cache of its own), --ignore-scripts, and an environment of PATH, HOME (the
//          work folder), LANG, TMPDIR and the proxy variables only. tar with no ownership or modes
//          kept, after its listing was checked.
//
// What the account produced is then copied into place by the admin with copyChecked (tree.ts).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import { lookupUser } from '../system/privilege.js';
import { SECURE_PATH, resolveCommand } from '../system/resolve.js';
import { copyFromFd, DEFAULT_TREE_LIMITS, NOFOLLOW_READ, type TreeLimits } from './tree.js';

/** npm may take a while for a registry download; a hung npm must not hang `adi` forever. */
const TOOL_TIMEOUT_MS = 10 * 60_000;
/** Output kept from a tool for its error message. */
const KEEP_OUTPUT = 8192;

export const DEFAULT_INSTALL_USER = 'adi-install';
export const DEFAULT_REGISTRY = 'https://registry.npmjs.org/';

/** The admin's network settings npm needs (proxies, extra CA certificates), passed on as they are. */
const PASSED_VARS = [
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'GIT_SSL_CAINFO',
];

export interface Stage {
  /** The account the tools run as (a name, for messages). */
  user: string;
  /** Set when we are root and switch to the account. */
  uid?: number;
  gid?: number;
  /** The admin's folder around `work` (removed by close()). */
  outer: string;
  /** The account's folder. */
  work: string;
  /** npm's project folder (a package.json of ours), its config files and its cache. */
  proj: string;
  env: Record<string, string>;
  npmArgs: string[];
  close(): void;
}

export interface StageOptions {
  /** The admin's environment: ADI_INSTALL_USER, ADI_NPM_REGISTRY / npm_config_registry, proxies. */
  env: NodeJS.ProcessEnv;
  /** Non-registry dependencies were allowed: npm may run git (the system's, as the account). */
  allowGit: boolean;
  say(line: string): void;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The account tools run as when we are root: found, or created as a locked system account. */
function installAccount(name: string, say: (line: string) => void): { uid: number; gid: number } {
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(name))
    throw new AdiError('BAD_CONFIG', `ADI_INSTALL_USER=${JSON.stringify(name)} is not a valid user name.`);
  let entry = lookupUser(name);
  if (entry === null) {
    let useradd: string;
    try {
      useradd = resolveCommand('useradd');
    } catch {
      throw new AdiError(
        'BAD_CONFIG',
        `The unprivileged account ${name}, which fetches plugin dependencies, does not exist and useradd is not installed to create it.`,
      );
    }
    let nologin = '/usr/sbin/nologin';
    if (!fs.existsSync(nologin)) nologin = '/bin/false';
    const r = spawnSync(
      useradd,
      [
        '--system',
        '--user-group',
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        nologin,
        '--comment',
        'adi plugin installs (unprivileged)',
        name,
      ],
      { encoding: 'utf8', env: { PATH: SECURE_PATH }, timeout: 60_000 },
    );
    // Two installs at once may both find no account: the one whose useradd loses uses the winner's.
    entry = lookupUser(name);
    if (r.status !== 0 && entry === null)
      throw new AdiError(
        'BAD_CONFIG',
        `Could not create the unprivileged account ${name} for plugin installs: ${(r.stderr || r.stdout).trim()}`,
      );
    if (r.status === 0)
      say(
        `Created the unprivileged account ${name}: plugin packages are unpacked and their dependencies fetched as it, never as root.`,
      );
    if (entry === null) throw new AdiError('BAD_CONFIG', `The account ${name} was created but cannot be looked up.`);
  }
  if (entry.uid === 0 || entry.gid === 0)
    throw new AdiError('BAD_CONFIG', `The install account ${name} has uid or gid 0; it must be unprivileged.`);
  return { uid: entry.uid, gid: entry.gid };
}

/** The registry npm uses: the admin's choice (ADI_NPM_REGISTRY, else npm_config_registry), never the package's. */
function registryFrom(env: NodeJS.ProcessEnv): string {
  const chosen = env.ADI_NPM_REGISTRY ?? env.npm_config_registry ?? DEFAULT_REGISTRY;
  // A line of our config file: a newline would let it add settings.
  if (!/^https?:\/\/[^\s]+$/.test(chosen))
    throw new AdiError('BAD_CONFIG', `The npm registry ${JSON.stringify(chosen)} is not an http(s) URL.`);
  return chosen;
}

/** The admin's CA file for npm (ADI_NPM_CAFILE, else npm_config_cafile), when it is an absolute path. */
function cafileLine(env: NodeJS.ProcessEnv): string[] {
  const file = env.ADI_NPM_CAFILE ?? env.npm_config_cafile;
  if (file === undefined || file === '') return [];
  if (!path.isAbsolute(file) || /[\0\n\r]/.test(file))
    throw new AdiError('BAD_CONFIG', `The npm CA file ${JSON.stringify(file)} is not an absolute path.`);
  return [`cafile=${file}`];
}

export function openStage(options: StageOptions): Stage {
  const root = isRoot();
  const account = root ? (options.env.ADI_INSTALL_USER ?? DEFAULT_INSTALL_USER) : os.userInfo().username;
  const ids = root ? installAccount(account, options.say) : undefined;
  // As root, not TMPDIR: the account must pass through the parent, which a private TMPDIR would stop.
  const outer = fs.mkdtempSync(path.join(root ? '/tmp' : os.tmpdir(), 'adi-install-'));
  try {
    fs.chmodSync(outer, root ? 0o711 : 0o700);
    const work = path.join(outer, 'work');
    fs.mkdirSync(work, { mode: 0o700 });
    const proj = path.join(work, 'proj');
    for (const d of [proj, path.join(work, 'home'), path.join(work, 'tmp'), path.join(work, 'cache')])
      fs.mkdirSync(d, { mode: 0o700 });
    fs.writeFileSync(
      path.join(proj, 'package.json'),
      '{ "name": "adi-plugin-fetch", "version": "0.0.0", "private": true }\n',
    );
    let git = '/nonexistent/adi-git-disabled';
    if (options.allowGit) {
      try {
        git = resolveCommand('git');
      } catch {
        // no git on this machine: git dependencies fail, naming npm's error
      }
    }
    const userconfig = path.join(work, 'npmrc');
    const globalconfig = path.join(work, 'npmrc-global');
    fs.writeFileSync(
      userconfig,
      [
        `registry=${registryFrom(options.env)}`,
        `git=${git}`,
        'ignore-scripts=true',
        'script-shell=/bin/false',
        'bin-links=false',
        'install-links=false',
        'package-lock=false',
        'save=false',
        'audit=false',
        'fund=false',
        'update-notifier=false',
        'strict-ssl=true',
        `cache=${path.join(work, 'cache')}`,
        ...cafileLine(options.env),
        '',
      ].join('\n'),
    );
    fs.writeFileSync(globalconfig, '');
    const env: Record<string, string> = {
      PATH: SECURE_PATH,
      HOME: path.join(work, 'home'),
      LANG: 'C.UTF-8',
      TMPDIR: path.join(work, 'tmp'),
    };
    for (const v of PASSED_VARS) {
      const value = options.env[v];
      if (value !== undefined && value !== '' && !/[\0\n]/.test(value)) env[v] = value;
    }
    if (ids !== undefined) chownTree(work, ids.uid, ids.gid);
    return {
      user: account,
      ...(ids ?? {}),
      outer,
      work,
      proj,
      env,
      npmArgs: [
        `--userconfig=${userconfig}`,
        `--globalconfig=${globalconfig}`,
        `--prefix=${proj}`,
        '--ignore-scripts',
        '--no-bin-links',
        '--no-audit',
        '--no-fund',
      ],
      close: () => fs.rmSync(outer, { recursive: true, force: true }),
    };
  } catch (err) {
    fs.rmSync(outer, { recursive: true, force: true });
    throw err;
  }
}

function chownTree(p: string, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

/** Give a file the admin put into the work folder to the account. */
export function handOver(stage: Stage, file: string): void {
  if (stage.uid !== undefined && stage.gid !== undefined) fs.lchownSync(file, stage.uid, stage.gid);
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout (bounded). */
  stdout: string;
  /** The last KEEP_OUTPUT characters of stdout and stderr together. */
  tail: string;
  /** stdout went over `maxStdout` and the tool was killed. */
  overflow: boolean;
}

/** Run a tool as the account, in `cwd`, with the stage's environment only. */
export function runAsStage(
  stage: Stage,
  file: string,
  args: string[],
  cwd: string,
  maxStdout = KEEP_OUTPUT,
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd,
      env: stage.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(stage.uid !== undefined ? { uid: stage.uid, gid: stage.gid } : {}),
    });
    let stdout = '';
    let tail = '';
    let overflow = false;
    const keep = (d: Buffer): void => {
      tail = (tail + d.toString('utf8')).slice(-KEEP_OUTPUT);
    };
    child.stdout.on('data', (d: Buffer) => {
      keep(d);
      if (overflow) return;
      stdout += d.toString('utf8');
      if (stdout.length > maxStdout) {
        overflow = true;
        stdout = '';
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), TOOL_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(
        new AdiError(
          'BAD_CONFIG',
          `${path.basename(file)} could not run as ${stage.user} (${err.message}); it and the folders above it must be readable by that account.`,
          { cause: err },
        ),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, tail, overflow });
    });
  });
}

/**
 * npm as [node, npm-cli.js]: the npm next to this node (the one that came with it), else from the
 * secure PATH, run by this node rather than through its `#!/usr/bin/env node` line, so the secure
 * PATH need not hold node.
 */
function npmArgv(): [string, string] {
  const beside = path.join(path.dirname(process.execPath), 'npm');
  const npm = fs.existsSync(beside) ? beside : resolveCommand('npm');
  return [process.execPath, fs.realpathSync(npm)];
}

/** Run npm as the account. */
function runNpm(stage: Stage, args: string[], maxStdout?: number): Promise<ToolResult> {
  const [node, cli] = npmArgv();
  return runAsStage(stage, node, [cli, ...args, ...stage.npmArgs], stage.proj, maxStdout);
}

function failed(what: string, r: ToolResult): string {
  const how = r.code !== null ? `exit ${r.code}` : (r.signal ?? 'killed');
  return `${what} failed (${how}):\n${r.tail.trim().split('\n').slice(-15).join('\n')}`;
}

/** Fetch the tarball of a registry spec (nothing else: no dependencies) into the work folder. */
export async function packFromRegistry(stage: Stage, spec: string): Promise<string> {
  const dest = path.join(stage.work, 'download');
  fs.mkdirSync(dest, { mode: 0o700 });
  handOver(stage, dest);
  const r = await runNpm(stage, ['pack', spec, `--pack-destination=${dest}`, '--json'], 1024 * 1024);
  if (r.code !== 0)
    throw new AdiError('BAD_ARGUMENT', `${failed(`npm pack ${spec} (as ${stage.user})`, r)}\nNothing was installed.`);
  const files = fs.readdirSync(dest).filter((f) => f.endsWith('.tgz'));
  if (files.length !== 1)
    throw new AdiError('INTERNAL', `npm pack ${spec} produced ${files.length} files; expected one .tgz.`);
  return path.join(dest, files[0] as string);
}

/**
 * Copy a tarball the admin can read into the work folder (bounded, without following links), so
 * the account can read it even when it sits in a private home.
 */
export function takeTarball(stage: Stage, file: string, limits: TreeLimits = DEFAULT_TREE_LIMITS): string {
  const fd = fs.openSync(file, NOFOLLOW_READ);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new AdiError('BAD_ARGUMENT', `${file} is not a regular file.`);
    const tooBig = (): AdiError =>
      new AdiError(
        'BAD_MANIFEST',
        `Refused: ${file} is larger than ${limits.maxFileBytes} bytes; a plugin package may have at most that. Nothing was installed.`,
      );
    if (st.size > limits.maxFileBytes) throw tooBig();
    const dest = path.join(stage.work, 'package.tgz');
    copyFromFd(fd, dest, st.size, 0o600, tooBig);
    handOver(stage, dest);
    return dest;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Check a tarball's listing (only plain files and folders, no absolute or `..` names, within the
 * limits), then extract it as the account into `work/package` without its first path component
 * (npm's `package/`). Returns that folder.
 */
export async function unpack(
  stage: Stage,
  tgz: string,
  display: string,
  limits: TreeLimits = DEFAULT_TREE_LIMITS,
): Promise<string> {
  let tar: string;
  try {
    tar = resolveCommand('tar');
  } catch {
    throw new AdiError('BAD_CONFIG', 'tar is not installed; it is needed to unpack plugin packages.');
  }
  const list = await runAsStage(
    stage,
    tar,
    ['--list', '--verbose', '--numeric-owner', '--gzip', '--file', tgz],
    stage.work,
    (limits.maxEntries + 1) * 600,
  );
  if (list.overflow)
    throw new AdiError(
      'BAD_MANIFEST',
      `Refused: ${display} lists more than ${limits.maxEntries} entries. Nothing was installed.`,
    );
  if (list.code !== 0) throw new AdiError('BAD_MANIFEST', failed(`Reading ${display} (tar --list)`, list));
  let entries = 0;
  let bytes = 0;
  for (const line of list.stdout.split('\n')) {
    if (line === '') continue;
    const m = /^(\S)\S*\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.*)$/.exec(line);
    const type = m?.[1] ?? line[0] ?? '?';
    const name = m?.[3] ?? line;
    const refuse = (why: string): AdiError =>
      new AdiError(
        'BAD_MANIFEST',
        `Refused: ${display} contains ${JSON.stringify(name)}, ${why}. Nothing was installed.`,
      );
    if (type === 'l') throw refuse('a symbolic link (plugins may not contain links)');
    if (type === 'h') throw refuse('a hard link (plugins may not contain links)');
    if ((type !== '-' && type !== 'd') || m === null) throw refuse('a special file (FIFO, socket or device)');
    const size = Number(m[2]);
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (name.startsWith('/') || parts.includes('..')) throw refuse('a name outside the package');
    if (parts.length - 1 > limits.maxDepth) throw refuse(`a name nested more than ${limits.maxDepth} deep`);
    if (size > limits.maxFileBytes) throw refuse(`${size} bytes long (at most ${limits.maxFileBytes} per file)`);
    bytes += size;
    entries++;
    if (bytes > limits.maxBytes)
      throw new AdiError(
        'BAD_MANIFEST',
        `Refused: ${display} unpacks to more than ${limits.maxBytes} bytes. Nothing was installed.`,
      );
    if (entries > limits.maxEntries)
      throw new AdiError(
        'BAD_MANIFEST',
        `Refused: ${display} has more than ${limits.maxEntries} entries. Nothing was installed.`,
      );
  }
  const out = path.join(stage.work, 'package');
  fs.mkdirSync(out, { mode: 0o700 });
  handOver(stage, out);
  const x = await runAsStage(
    stage,
    tar,
    [
      '--extract',
      '--gzip',
      '--file',
      tgz,
      '--directory',
      out,
      '--strip-components=1',
      '--no-same-owner',
      '--no-same-permissions',
      '--no-overwrite-dir',
      '--delay-directory-restore',
    ],
    stage.work,
  );
  if (x.code !== 0) throw new AdiError('BAD_MANIFEST', failed(`Unpacking ${display} (tar)`, x));
  return out;
}

/**
 * npm install of `dependencies` and `optionalDependencies` (already checked) into work/proj, as the
 * account. Returns work/proj/node_modules (or null when npm installed nothing).
 */
export async function fetchDependencies(
  stage: Stage,
  plugin: string,
  dependencies: Record<string, string>,
  optional: Record<string, string>,
): Promise<string | null> {
  const pkg = {
    name: 'adi-plugin-deps',
    version: '0.0.0',
    private: true,
    dependencies,
    optionalDependencies: optional,
  };
  const file = path.join(stage.proj, 'package.json');
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`, { mode: 0o644 });
  handOver(stage, file);
  const r = await runNpm(stage, ['install', '--omit=dev', '--omit=peer', '--legacy-peer-deps']);
  if (r.code !== 0) {
    const names = [...Object.entries(dependencies), ...Object.entries(optional)]
      .map(([n, s]) => `${n}@${s}`)
      .join(', ');
    throw new AdiError(
      'BAD_ARGUMENT',
      `${failed(`Fetching the dependencies of ${plugin} (${names}) with npm as ${stage.user}`, r)}\nNothing was installed.`,
    );
  }
  const modules = path.join(stage.proj, 'node_modules');
  return fs.existsSync(modules) ? modules : null;
}
