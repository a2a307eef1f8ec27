// Installing and removing plugins: the file work, the approval of privileged commands, nothing about
// the daemon (the CLI reloads it afterwards).
//
// Every byte of a package is treated as hostile. install:
//   1. gets the package's own files, and nothing else: a folder is copied (checked, without its
//      node_modules and .git); a .tgz is unpacked, and a registry spec fetched with `npm pack` then
//      unpacked, by an unprivileged account with configuration adi wrote (stage.ts);
//   2. copies them, checked (tree.ts: no links, special files, set-id bits; bounded size and depth),
//      into `<plugins>/.staging-*/plugin`, the admin's;
//   3. validates the manifest (every string a person reads is plain text), refuses non-registry
//      dependencies unless allowed, and a service name another source owns;
//   4. asks about privileged commands, when it must (see below), before any dependency is fetched;
//   5. has the account fetch the dependencies with npm (no scripts) in a folder of its own, and copies
//      them, checked, into the plugin's node_modules; links `adi-daemon`; records digests;
//   6. swaps the result into `<plugins>/<name>/`.
// Until the swap nothing outside the staging folders changes, so a refusal or a failure installs
// nothing and keeps an older version (and its approval) as it was.
//
// Approvals: an approval is (plugin, version, exact patterns, digests of its files). A new install
// asks; an update asks again when the version, the patterns or the package's own files differ from
// those approved, saying which. Only a byte-identical package with the same patterns keeps its
// approval without a question. The old approval is removed before the new files go in, so it never
// covers new files even for a moment.

import fs from 'node:fs';
import path from 'node:path';
import { AdiError } from '../core/errors.js';
import { checkName, type Paths } from '../core/paths.js';
import { readApproval, removeApproval, writeApproval, type Approval } from './approvals.js';
import { filesDigest, installedDigest } from './digest.js';
import { listInstalled, readInstalled } from './installed.js';
import {
  ensurePluginsRoot,
  ensureRuntime,
  linkAdiDaemon,
  makeTreeReadable,
  pluginDir,
  pluginsRoot,
  unreachableAncestors,
  type LocationInputs,
  type PluginLocation,
} from './location.js';
import { isRegistrySpec, readManifest, type PluginManifest } from './manifest.js';
import { serviceOwners } from './owners.js';
import { approvalLines, samePatterns } from './prompt.js';
import { fetchDependencies, openStage, packFromRegistry, takeTarball, unpack, type Stage } from './stage.js';
import { copyChecked, DEFAULT_TREE_LIMITS, type TreeLimits } from './tree.js';

export interface InstallOptions {
  paths: Paths;
  /** The package: a folder, a .tgz file or an npm package spec. */
  source: string;
  /** Approve requested privileged commands without asking (--yes). */
  yes: boolean;
  /** Allow git, file, link, URL and alias dependency specs (--allow-non-registry-deps). */
  allowNonRegistryDeps?: boolean;
  /** Ask the question (the text ends with "Allow? [y/N] "); resolves to the approval. */
  ask(prompt: string): Promise<boolean>;
  /** Progress and information lines for the user. */
  say(line: string): void;
  /** The admin's environment: the registry, proxies and ADI_INSTALL_USER are taken from it, nothing else. */
  env?: NodeJS.ProcessEnv;
  /** Resolves relative folder and file sources. */
  cwd?: string;
  location?: LocationInputs;
  /** Service names a running daemon defines, with their owner (e.g. ad-hoc ones), besides the files'. */
  otherOwners?: ReadonlyMap<string, string>;
  limits?: TreeLimits;
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

/** npm's package name, optionally with @version, range or tag: the only registry sources accepted. */
const REGISTRY_SOURCE = /^((?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*)(?:@(.*))?$/;

function classify(source: string, cwd: string, allowNonRegistry: boolean): { kind: SourceKind; target: string } {
  const looksLikePath =
    source.startsWith('.') || source.startsWith('/') || source.startsWith('~') || /\.(tgz|tar\.gz)$/i.test(source);
  const full = path.resolve(cwd, source);
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(full);
  } catch {
    st = null;
  }
  if (st?.isDirectory()) return { kind: 'folder', target: full };
  if (st?.isFile()) return { kind: 'tarball', target: full };
  if (looksLikePath)
    throw new AdiError(
      'BAD_ARGUMENT',
      `${full} does not exist: give a plugin folder, a .tgz file or an npm package name.`,
    );
  // npm would read it as an option.
  if (source.startsWith('-'))
    throw new AdiError('BAD_ARGUMENT', `${JSON.stringify(source)} is not a folder, a .tgz file or a package name.`);
  const m = REGISTRY_SOURCE.exec(source);
  if (!allowNonRegistry && (m === null || (m[2] !== undefined && !isRegistrySpec(m[2])))) {
    throw new AdiError(
      'BAD_ARGUMENT',
      `${JSON.stringify(source)} is not a folder, a .tgz file or a registry package (name, name@version or name@range); git, URL and alias specs are refused unless --allow-non-registry-deps is given.`,
    );
  }
  return { kind: 'registry', target: source };
}

function checkBin(m: PluginManifest, staged: string): void {
  if (m.bin === null) return;
  let ok = false;
  try {
    ok = fs.lstatSync(path.join(staged, m.bin)).isFile();
  } catch {
    ok = false;
  }
  if (!ok)
    throw new AdiError(
      'BAD_MANIFEST',
      `Invalid plugin manifest ${m.file}:\n  field "bin": ${m.bin} is not a file in the package`,
    );
}

/** What differs between an approval and what is being installed, in words; empty when nothing does. */
function approvalChanges(old: Approval, version: string, patterns: readonly string[], digest: string): string[] {
  const changes: string[] = [];
  if (old.version !== version) changes.push(`the version (${old.version} -> ${version})`);
  if (!samePatterns(old.patterns, patterns)) {
    const added = patterns.filter((p) => !old.patterns.includes(p));
    const removed = old.patterns.filter((p) => !patterns.includes(p));
    const parts = [
      ...(added.length > 0 ? [`added ${added.map((p) => JSON.stringify(p)).join(', ')}`] : []),
      ...(removed.length > 0 ? [`removed ${removed.map((p) => JSON.stringify(p)).join(', ')}`] : []),
    ];
    changes.push(`the privileged commands (${parts.join('; ')})`);
  }
  if (old.files_digest !== digest)
    changes.push(
      old.files_digest === undefined
        ? "the plugin's own files (not recorded by the earlier approval)"
        : "the plugin's own files changed",
    );
  return changes;
}

export async function installPlugin(opts: InstallOptions): Promise<InstallResult> {
  const { paths } = opts;
  const env = opts.env ?? process.env;
  const limits = opts.limits ?? DEFAULT_TREE_LIMITS;
  const allowNonRegistry = opts.allowNonRegistryDeps === true;
  const { kind, target } = classify(opts.source, opts.cwd ?? process.cwd(), allowNonRegistry);
  const loc = pluginsRoot(paths, opts.location);
  ensurePluginsRoot(loc);
  if (loc.shared) {
    const blocked = unreachableAncestors(loc.dir);
    if (blocked.length > 0) {
      opts.say(
        `warning: ${paths.adiUser} cannot reach ${loc.dir}: ${blocked.join(', ')} ${blocked.length > 1 ? 'are' : 'is'} closed to other users (chmod o+x)`,
      );
    }
  }

  const staging = fs.mkdtempSync(path.join(loc.dir, '.staging-'));
  let stage: Stage | null = null;
  const getStage = (): Stage => {
    stage ??= openStage({ env, allowGit: allowNonRegistry, say: opts.say });
    return stage;
  };
  try {
    const staged = path.join(staging, 'plugin');
    const display = kind === 'folder' ? path.join(target, 'package.json') : `package.json of ${target}`;
    // 1-2. The package's own files, checked, into the admin's staging folder.
    let totals;
    if (kind === 'folder') {
      totals = copyChecked(target, staged, {
        what: target,
        limits,
        skip: (rel) => rel === 'node_modules' || rel === '.git',
      });
    } else {
      const s = getStage();
      const tgz = kind === 'tarball' ? takeTarball(s, target, limits) : await packFromRegistry(s, target);
      const unpacked = await unpack(s, tgz, target, limits);
      // Bundled dependencies are refused (manifest.ts); a node_modules shipped anyway is not used.
      totals = copyChecked(unpacked, staged, { what: target, limits, skip: (rel) => rel === 'node_modules' });
    }

    // 3. The manifest, the dependencies and the service name.
    const manifest = readManifest(staged, { display });
    checkBin(manifest, staged);
    if (manifest.nonRegistry.length > 0 && !allowNonRegistry) {
      const list = manifest.nonRegistry.map((d) => `  ${d.field}.${d.name}: ${JSON.stringify(d.spec)}`).join('\n');
      throw new AdiError(
        'BAD_MANIFEST',
        `Refused: ${display} has dependencies that do not come from the npm registry:\n${list}\nadi fetches dependencies only as registry versions or ranges. Nothing was installed. (--allow-non-registry-deps allows them; npm still runs unprivileged, with no scripts and adi's own configuration.)`,
      );
    }
    const name = manifest.name;
    const final = pluginDir(loc, name);
    const existing = fs.existsSync(final) ? readInstalled(loc, name, { resolve: (cmd) => cmd }) : null;
    const previousVersion = existing === null ? null : (existing.manifest?.version ?? 'unknown');
    const service = manifest.service?.name ?? null;
    if (service !== null) {
      const owners = (serviceOwners(paths, loc).get(service) ?? []).filter((o) => o !== `plugin ${name}`);
      const other = opts.otherOwners?.get(service);
      if (other !== undefined && other !== `plugin ${name}`) owners.push(other);
      if (owners.length > 0) {
        throw new AdiError(
          'SERVICE_EXISTS',
          `Refused: ${name} defines the service "${service}", which ${owners.join(' and ')} already define${owners.length > 1 ? '' : 's'}. A service name has one owner; nothing was installed.`,
        );
      }
    }
    opts.say(
      `${existing === null ? 'Installing' : 'Updating'} ${name} ${manifest.version}${previousVersion !== null ? ` (installed: ${previousVersion})` : ''} from ${target}`,
    );

    // 4. Approval, before any dependency is fetched and before anything is installed.
    const requested = manifest.service?.privileged_commands ?? [];
    const ownDigest = await filesDigest(staged);
    const old = readApproval(paths, name);
    let approval: ApprovalOutcome = 'none';
    if (requested.length > 0) {
      const prompt = approvalLines(requested, undefined, final);
      const changes =
        existing !== null && old !== null ? approvalChanges(old, manifest.version, requested, ownDigest) : null;
      if (changes !== null && changes.length === 0) {
        approval = 'unchanged';
        opts.say(
          `The package and its privileged commands are exactly those you approved for ${name} ${old?.version ?? ''}; not asking again:`,
        );
        for (const p of requested) opts.say(`  - ${p}`);
      } else if (opts.yes) {
        approval = 'yes';
        if (changes !== null) opts.say(`Changed since your approval: ${changes.join('; ')}.`);
        for (const line of prompt) opts.say(line);
        opts.say('Allowed by --yes.');
      } else {
        if (changes !== null)
          opts.say(
            `Changed since your approval of ${name} ${old?.version ?? ''}: ${changes.join('; ')}. Root access needs your approval again.`,
          );
        const allowed = await opts.ask(`${prompt.join('\n')}\n`);
        if (!allowed) {
          throw new AdiError(
            'CANCELLED',
            existing !== null
              ? `Not updated: root access was not approved. ${name} ${previousVersion ?? ''} stays installed with its earlier approval.`
              : `Not installed: root access was not approved.`,
          );
        }
        approval = 'asked';
      }
    }

    // 5. Dependencies, fetched by the account, copied in checked.
    if (manifest.hasDependencies) {
      const s = getStage();
      opts.say(`Fetching the dependencies of ${name} (npm as ${s.user}, no scripts)...`);
      const modules = await fetchDependencies(s, name, manifest.dependencies, manifest.optionalDependencies);
      if (modules !== null) {
        copyChecked(modules, path.join(staged, 'node_modules'), {
          what: `the dependencies of ${name}`,
          limits,
          already: totals,
          skip: (rel) => rel === '.package-lock.json',
        });
      }
    }
    if (loc.shared) ensureRuntime(loc);
    linkAdiDaemon(loc, staged);
    if (loc.shared) makeTreeReadable(staged);

    const newApproval: Approval | null =
      requested.length === 0
        ? null
        : {
            plugin: name,
            version: manifest.version,
            patterns: [...requested],
            approved_at: approval === 'unchanged' && old !== null ? old.approved_at : new Date().toISOString(),
            files_digest: ownDigest,
            tree_digest: await installedDigest(staged),
          };
    commit(paths, loc, name, staged, old, newApproval);
    return {
      name,
      version: manifest.version,
      dir: final,
      service,
      previousVersion,
      patterns: requested,
      approval,
      location: loc,
    };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    (stage as Stage | null)?.close();
  }
}

/**
 * Swap the staged plugin in and set its approval. The old approval goes first: if anything stops
 * half-way, there is no approval rather than an old one next to new code.
 */
function commit(
  paths: Paths,
  loc: PluginLocation,
  name: string,
  staged: string,
  old: Approval | null,
  next: Approval | null,
): void {
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
  if (!hadFiles && !hadApproval)
    throw new AdiError('PLUGIN_NOT_FOUND', `No plugin named ${name} is installed (in ${loc.dir}).`);
  // Approval first: a plugin whose files could not all be removed must not keep root access.
  removeApproval(paths, name);
  if (hadFiles) {
    // Out of sight at once (the daemon no longer lists it), then deleted.
    const trash = fs.mkdtempSync(path.join(loc.dir, `.removing-${name}-`));
    fs.renameSync(dir, path.join(trash, 'plugin'));
    fs.rmSync(trash, { recursive: true, force: true });
  }
  // The last plugin gone: its runtime copy of adi-daemon goes too (the next install makes a new one).
  if (listInstalled(loc, { resolve: (cmd) => cmd }).length === 0)
    fs.rmSync(path.join(loc.dir, '.runtime'), { recursive: true, force: true });
  return { name, removedFiles: hadFiles, removedApproval: hadApproval };
}

/** The service a plugin's manifest defines, if it is installed and readable. */
export function installedService(paths: Paths, name: string, location?: LocationInputs): string | null {
  const loc = pluginsRoot(paths, location);
  if (!fs.existsSync(pluginDir(loc, name))) return null;
  return readInstalled(loc, name, { resolve: (cmd) => cmd }).manifest?.service?.name ?? null;
}
