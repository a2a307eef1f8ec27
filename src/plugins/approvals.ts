// What the user approved when a plugin was installed: the plugin, its version, the exact
// privileged_commands patterns and digests of its files (see digest.ts). Stored in the daemon's private data dir (0700, the admin's), where the
// plugin user can neither write nor read. SudoRun from a plugin identity is checked against these only.

import fs from 'node:fs';
import path from 'node:path';
import { checkName, type Paths } from '../core/paths.js';
import { ensurePrivateDir, writeFileAtomic } from '../core/files.js';

export interface Approval {
  plugin: string;
  version: string;
  /** The patterns exactly as shown in the install prompt and approved. */
  patterns: string[];
  /** ISO time of the approval. */
  approved_at: string;
  /** The package's own files when approved (digest.ts filesDigest); absent in approvals from older adi. */
  files_digest?: string;
  /** The installed folder, dependencies included (digest.ts installedDigest), which SudoRun checks. */
  tree_digest?: string;
}

export function approvalsDir(paths: Paths): string {
  return path.join(paths.dataDir, 'approvals');
}

function approvalFile(paths: Paths, plugin: string): string {
  return path.join(approvalsDir(paths), `${checkName('plugin', plugin)}.json`);
}

export function readApproval(paths: Paths, plugin: string): Approval | null {
  let raw: string;
  try {
    raw = fs.readFileSync(approvalFile(paths, plugin), 'utf8');
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(raw) as Partial<Approval>;
    if (
      v.plugin !== plugin ||
      typeof v.version !== 'string' ||
      !Array.isArray(v.patterns) ||
      !v.patterns.every((p) => typeof p === 'string')
    ) {
      return null;
    }
    const digest = (d: unknown): string | undefined =>
      typeof d === 'string' && /^[0-9a-f]{64}$/.test(d) ? d : undefined;
    const files = digest(v.files_digest);
    const tree = digest(v.tree_digest);
    return {
      plugin,
      version: v.version,
      patterns: v.patterns,
      approved_at: String(v.approved_at ?? ''),
      ...(files !== undefined ? { files_digest: files } : {}),
      ...(tree !== undefined ? { tree_digest: tree } : {}),
    };
  } catch {
    return null;
  }
}

export function writeApproval(paths: Paths, approval: Approval): void {
  ensurePrivateDir(paths.dataDir);
  ensurePrivateDir(approvalsDir(paths));
  writeFileAtomic(approvalFile(paths, approval.plugin), `${JSON.stringify(approval, null, 2)}\n`, 0o600);
}

export function removeApproval(paths: Paths, plugin: string): void {
  fs.rmSync(approvalFile(paths, plugin), { force: true });
}

/** The patterns a plugin may SudoRun; none when it has no approval. */
export function approvedPatterns(paths: Paths, plugin: string): string[] {
  return readApproval(paths, plugin)?.patterns ?? [];
}
