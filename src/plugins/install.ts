// Installing and removing plugins (issue 5 item 2): the file work, the approval of privileged
// commands, nothing about the daemon (the CLI reloads it afterwards).
//
// install: stage the package in `<plugins>/.staging-*` (a folder is copied without node_modules; a
// .tgz or registry spec goes through `npm install --prefix`, scripts never run), validate its
// manifest, ask for its privileged commands, install its own dependencies if it has any, link
// `adi-daemon`, then swap it into `<plugins>/<name>/`. Until the swap nothing outside the staging
// folder changes, so a refusal or a failure installs nothing and keeps an older version as it was.
//
// Approvals: an approval is (plugin, version, exact patterns). A new install, or an update whose
// patterns differ in any way from the approved ones, asks again; the old approval is removed before
// the new files go in, so it never covers new patterns even for a moment. An update with exactly the
// same pattern strings keeps the approval (its version is updated) and does not ask.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../errors.js';
import { checkName, type Paths } from '../paths.js';
import { readApproval, removeApproval, writeApproval, type Approval } from './approvals.js';
import { listInstalled, readInstalled } from './installed.js';
import {
  ensurePluginsRoot, ensureRuntime, linkAdiDaemon, makeTreeReadable, pluginDir, pluginsRoot, unreachableAncestors,
  type LocationInputs, type PluginLocation,
} from './location.js';
import { readManifest, type PluginManifest } from './manifest.js';
import { approvalLines, samePatterns } from './prompt.js';

/** npm may take a while for a registry download; a hung npm must not hang `adi` forever. */
const NPM_TIMEOUT_MS = 10 * 60_000;

export interface InstallOptions {
  paths: Paths;
  /** The package: a folder, a .tgz file or an npm package spec. */
  source: string;
  /** Approve requested privileged commands without asking (--yes). */
  yes: boolean;
  /** Ask the question (the text ends with "Allow? [y/N] "); resolves to the approval. */
  ask(prompt: string): Promise<boolean>;
  /** Progress and information lines for the user. */
  say(line: string): void;
  /** Environment for npm (the user's: registry, proxy, cache). */
  env?: NodeJS.ProcessEnv;
  /** Resolves relative folder and file sources. */
  cwd?: string;
  location?: LocationInputs;
}

export type ApprovalOutcome = 'none' | 'asked' | 'yes' | 'unchanged';

export interface InstallResult {
  name: string;
  version: string;
  dir: string;
  /** The plugin's service name, or null. */
  service: string | null;
  /** Version replaced by this install, or null for a new plugin. */
  previousVersion: string | null;
  patterns: string[];
  approval: ApprovalOutcome;
  location: PluginLocation;
}

type SourceKind = 'folder' | 'tarball' | 'registry';

function classify(source: string, cwd: string): { kind: SourceKind; target: string } {
  const looksLikePath = source.startsWith('.') || source.startsWith('/') || source.startsWith('~') || /\.(tgz|tar\.gz)$/i.test(source);
  const full = path.resolve(cwd, source);
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(full);
  } catch {
    st = null;
  }
  if (st?.isDirectory()) return { kind: 'folder', target: full };
  if (st?.isFile()) return { kind: 'tarball', target: full };
  if (looksLikePath) throw new AdiError('BAD_ARGUMENT', `${full} does not exist: give a plugin folder, a .tgz file or an npm package name.`);
  return { kind: 'registry', target: source };
}

/** `npm` next to this node (the one that came with it), else from PATH. */
function npmCommand(): string {
  const beside = path.join(path.dirname(process.execPath), 'npm');
  return fs.existsSync(beside) ? beside : 'npm';
}

function runNpm(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(npmCommand(), args, {
      cwd,
      env: { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-8192);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), NPM_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new AdiError('INTERNAL', `npm could not run (${err.message}); it is needed to install packages and dependencies.`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else {
        const tail = output.trim().split('\n').slice(-15).join('\n');
        reject(new AdiError('INTERNAL', `npm ${args[0] ?? ''} failed (${code !== null ? `exit ${code}` : signal ?? 'killed'}):\n${tail}`));
      }
    });
  });
}

/** npm flags for every install: no lifecycle scripts (no plugin code runs as the admin), no dev or peer deps. */
const NPM_INSTALL_FLAGS = ['--omit=dev', '--omit=peer', '--legacy-peer-deps', '--ignore-scripts', '--no-audit', '--no-fund'];

/** Copy a plugin folder without its node_modules (and VCS data): dependencies are installed fresh. */
function copyFolder(from: string, to: string): void {
  fs.cpSync(from, to, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => {
      const rel = path.relative(from, src);
      return rel !== 'node_modules' && rel !== '.git';
    },
  });
}

/** Install a tarball or spec with npm into `work`, then move the package (and its deps) to `staged`. */
async function fetchWithNpm(spec: string, work: string, staged: string, env: NodeJS.ProcessEnv): Promise<void> {
  fs.mkdirSync(work, { recursive: true });
  fs.writeFileSync(path.join(work, 'package.json'), '{}\n');
  await runNpm(['install', '--prefix', work, ...NPM_INSTALL_FLAGS, spec], work, env);
  const deps = (JSON.parse(fs.readFileSync(path.join(work, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
  const names = Object.keys(deps);
  if (names.length !== 1) throw new AdiError('INTERNAL', `npm installed ${names.length} packages for ${spec}; expected one.`);
  const name = names[0] as string;
  const modules = path.join(work, 'node_modules');
  fs.renameSync(path.join(modules, name), staged);
  // npm hoisted the package's own dependencies beside it: they become the plugin's node_modules.
  const own = path.join(staged, 'node_modules');
  for (const entry of fs.readdirSync(modules)) {
    if (entry === '.bin' || entry.startsWith('.package-lock')) continue;
    fs.mkdirSync(own, { recursive: true });
    const dest = path.join(own, entry);
    if (fs.existsSync(dest)) continue;
    fs.renameSync(path.join(modules, entry), dest);
  }
}

function checkBin(m: PluginManifest, staged: string): void {
  if (m.bin === null) return;
  const file = path.join(staged, m.bin);
  let ok = false;
  try {
    ok = fs.statSync(file).isFile();
  } catch {
    ok = false;
  }
  if (!ok) throw new AdiError('BAD_MANIFEST', `Invalid plugin manifest ${m.file}:\n  field "bin": ${m.bin} is not a file in the package`);
}

export async function installPlugin(opts: InstallOptions): Promise<InstallResult> {
  const { paths } = opts;
  const env = opts.env ?? process.env;
  const { kind, target } = classify(opts.source, opts.cwd ?? process.cwd());
  const loc = pluginsRoot(paths, opts.location);
  ensurePluginsRoot(loc);
  if (loc.shared) {
    const blocked = unreachableAncestors(loc.dir);
    if (blocked.length > 0) {
      opts.say(`warning: ${paths.adiUser} cannot reach ${loc.dir}: ${blocked.join(', ')} ${blocked.length > 1 ? 'are' : 'is'} closed to other users (chmod o+x)`);
    }
  }

  const staging = fs.mkdtempSync(path.join(loc.dir, '.staging-'));
  try {
    const staged = path.join(staging, 'plugin');
    if (kind === 'folder') copyFolder(target, staged);
    else await fetchWithNpm(target, path.join(staging, 'npm'), staged, env);

    const display = kind === 'folder' ? path.join(target, 'package.json') : `package.json of ${target}`;
    const manifest = readManifest(staged, { display });
    checkBin(manifest, staged);
    const name = manifest.name;
    const final = pluginDir(loc, name);
    const existing = fs.existsSync(final) ? readInstalled(loc, name, { resolve: (cmd) => cmd }) : null;
    const previousVersion = existing === null ? null : (existing.manifest?.version ?? 'unknown');
    opts.say(`${existing === null ? 'Installing' : 'Updating'} ${name} ${manifest.version}${previousVersion !== null ? ` (installed: ${previousVersion})` : ''} from ${target}`);

    // Approval, before anything else is installed.
    const requested = manifest.service?.privileged_commands ?? [];
    const old = readApproval(paths, name);
    let approval: ApprovalOutcome = 'none';
    if (requested.length > 0) {
      const prompt = approvalLines(requested);
      if (existing !== null && old !== null && samePatterns(old.patterns, requested)) {
        approval = 'unchanged';
        opts.say(`The privileged commands are exactly those you approved for ${name} ${old.version}; not asking again:`);
        for (const p of requested) opts.say(`  - ${p}`);
      } else if (opts.yes) {
        approval = 'yes';
        for (const line of prompt) opts.say(line);
        opts.say('Allowed by --yes.');
      } else {
        if (existing !== null && old !== null) opts.say('Its privileged commands differ from those you approved before, so they need your approval again.');
        const allowed = await opts.ask(`${prompt.join('\n')}\n`);
        if (!allowed) {
          throw new AdiError('CANCELLED', existing !== null
            ? `Not updated: root access was not approved. ${name} ${previousVersion ?? ''} stays installed with its earlier approval.`
            : `Not installed: root access was not approved.`);
        }
        approval = 'asked';
      }
    }

    if (manifest.hasDependencies && kind === 'folder') {
      opts.say(`Installing the dependencies of ${name} (npm, no scripts)...`);
      await runNpm(['install', ...NPM_INSTALL_FLAGS], staged, env);
    }
    if (loc.shared) ensureRuntime(loc);
    linkAdiDaemon(loc, staged);
    if (loc.shared) makeTreeReadable(staged);

    const newApproval: Approval | null = requested.length === 0
      ? null
      : { plugin: name, version: manifest.version, patterns: [...requested], approved_at: approval === 'unchanged' && old !== null ? old.approved_at : new Date().toISOString() };
    commit(paths, loc, name, staged, old, newApproval);
    return {
      name,
      version: manifest.version,
      dir: final,
      service: manifest.service?.name ?? null,
      previousVersion,
      patterns: requested,
      approval,
      location: loc,
    };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Swap the staged plugin in and set its approval. The old approval goes first: if anything stops
 * half-way, there is no approval rather than an old one next to new code.
 */
function commit(paths: Paths, loc: PluginLocation, name: string, staged: string, old: Approval | null, next: Approval | null): void {
  const final = pluginDir(loc, name);
  const backup = fs.existsSync(final) ? fs.mkdtempSync(path.join(loc.dir, `.old-${name}-`)) : null;
  if (old !== null) removeApproval(paths, name);
  try {
    if (backup !== null) fs.renameSync(final, path.join(backup, 'plugin'));
    try {
      fs.renameSync(staged, final);
    } catch (err) {
      if (backup !== null) fs.renameSync(path.join(backup, 'plugin'), final);
      throw err;
    }
  } catch (err) {
    if (old !== null) writeApproval(paths, old);
    if (backup !== null) fs.rmSync(backup, { recursive: true, force: true });
    throw err;
  }
  if (next !== null) writeApproval(paths, next);
  if (backup !== null) fs.rmSync(backup, { recursive: true, force: true });
}

export interface UninstallResult {
  name: string;
  /** The plugin's folder existed and was removed. */
  removedFiles: boolean;
  /** An approval existed and was removed. */
  removedApproval: boolean;
}

/** Remove a plugin's folder and its approval. PLUGIN_NOT_FOUND when neither exists. */
export function uninstallPlugin(paths: Paths, name: string, location?: LocationInputs): UninstallResult {
  checkName('plugin', name);
  const loc = pluginsRoot(paths, location);
  const dir = pluginDir(loc, name);
  const hadFiles = fs.existsSync(dir);
  const hadApproval = readApproval(paths, name) !== null;
  if (!hadFiles && !hadApproval) throw new AdiError('PLUGIN_NOT_FOUND', `No plugin named ${name} is installed (in ${loc.dir}).`);
  // Approval first: a plugin whose files could not all be removed must not keep root access.
  removeApproval(paths, name);
  if (hadFiles) {
    // Out of sight at once (the daemon no longer lists it), then deleted.
    const trash = fs.mkdtempSync(path.join(loc.dir, `.removing-${name}-`));
    fs.renameSync(dir, path.join(trash, 'plugin'));
    fs.rmSync(trash, { recursive: true, force: true });
  }
  // The last plugin gone: its runtime copy of adi-daemon goes too (the next install makes a new one).
  if (listInstalled(loc, { resolve: (cmd) => cmd }).length === 0) fs.rmSync(path.join(loc.dir, '.runtime'), { recursive: true, force: true });
  return { name, removedFiles: hadFiles, removedApproval: hadApproval };
}

/** The service a plugin's manifest defines, if it is installed and readable. */
export function installedService(paths: Paths, name: string, location?: LocationInputs): string | null {
  const loc = pluginsRoot(paths, location);
  if (!fs.existsSync(pluginDir(loc, name))) return null;
  return readInstalled(loc, name, { resolve: (cmd) => cmd }).manifest?.service?.name ?? null;
}
