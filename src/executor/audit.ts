// The audit log (issue 4 item 7): one JSON object per line in <logs dir>/audit.log for every Run,
// SudoRun, denial and privileged service start. Append-only: each entry is one write(2) to a file
// opened O_APPEND, so concurrent writers never interleave within a line, and JSON string escaping
// means a newline inside an argument cannot forge a second entry.

import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from '../paths.js';
import type { Logger } from '../server/logger.js';

export type AuditAction = 'run' | 'sudo_run' | 'sudo_denied' | 'privileged_service';

/**
 * How the request ended: its exit status, the denial's reason, or the error's code; for a privileged
 * service start, the pid it started with.
 */
export type AuditResult =
  | { exit_code: number; signal: string | null }
  | { pid: number }
  | { denied: string }
  | { error: string; message?: string };

export interface AuditEntry {
  /** Identity label: "admin", "plugin:<name>", "anonymous". */
  identity: string;
  action: AuditAction;
  /** The command and its arguments as requested (the resolved path when resolution succeeded). */
  argv: readonly string[];
  /** The reason the caller gave (SudoRun), or null. */
  reason: string | null;
  result: AuditResult;
  /** The user the command ran as, when it ran. */
  as?: string;
  /** The approved pattern that allowed a plugin's SudoRun. */
  pattern?: string;
}

/** Bounds so one request cannot make a megabyte audit line: long arguments are cut, marked as such. */
export const AUDIT_MAX_ARG_CHARS = 4096;
export const AUDIT_MAX_ARGS = 256;
export const AUDIT_MAX_REASON_CHARS = 1000;

export function auditFile(paths: Pick<Paths, 'logsDir'>): string {
  return path.join(paths.logsDir, 'audit.log');
}

function cut(s: string, max: number): { text: string; cut: boolean } {
  return s.length > max ? { text: s.slice(0, max), cut: true } : { text: s, cut: false };
}

/** The line written for an entry (with its trailing newline). */
export function formatAuditLine(entry: AuditEntry, now = new Date()): string {
  let truncated = entry.argv.length > AUDIT_MAX_ARGS;
  const argv = entry.argv.slice(0, AUDIT_MAX_ARGS).map((a) => {
    const c = cut(String(a), AUDIT_MAX_ARG_CHARS);
    truncated ||= c.cut;
    return c.text;
  });
  const reason = entry.reason === null ? null : cut(entry.reason, AUDIT_MAX_REASON_CHARS).text;
  const record: Record<string, unknown> = {
    time: now.toISOString(),
    identity: entry.identity,
    action: entry.action,
    argv,
    reason,
    result: entry.result,
  };
  if (truncated) record.argv_truncated = true;
  if (entry.as !== undefined) record.as = entry.as;
  if (entry.pattern !== undefined) record.pattern = entry.pattern;
  return JSON.stringify(record) + '\n';
}

export interface Audit {
  record(entry: AuditEntry): void;
}

export class AuditLog implements Audit {
  readonly file: string;

  constructor(file: string, private readonly log: Logger) {
    this.file = file;
  }

  /** Appends one entry. Never throws: a failed write is reported to the daemon log instead. */
  record(entry: AuditEntry): void {
    let line: string;
    try {
      line = formatAuditLine(entry);
    } catch (err) {
      this.log.error(`audit: could not format an entry for ${entry.identity} ${entry.action}: ${String(err)}`);
      return;
    }
    let fd: number | null = null;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      // Opened per entry: a rotated or deleted log is simply recreated. O_NOFOLLOW: a symlink planted
      // at this path must not redirect the audit trail into another file.
      fd = fs.openSync(
        this.file,
        fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
        0o600,
      );
      const st = fs.fstatSync(fd);
      if ((st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
      fs.writeSync(fd, line);
    } catch (err) {
      this.log.error(`audit: could not write to ${this.file}: ${err instanceof Error ? err.message : String(err)}; lost entry: ${line.trimEnd()}`);
    } finally {
      if (fd !== null) {
        try {
          fs.closeSync(fd);
        } catch {
          // already reported if the write failed
        }
      }
    }
  }
}

/** An audit sink that keeps entries in memory (tests, or a daemon with auditing unavailable). */
export class MemoryAudit implements Audit {
  readonly entries: AuditEntry[] = [];
  record(entry: AuditEntry): void {
    this.entries.push(entry);
  }
}
