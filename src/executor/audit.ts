// The audit log: one JSON object per line in <logs dir>/audit.log for every Run, SudoRun, denial,
// refused request and privileged service start. Append-only: each entry is one write(2) to a file
// opened O_APPEND, so concurrent writers never interleave within a line, and JSON string escaping
// means a newline inside an argument cannot forge a second entry.
//
// Bounded three ways, because every caller (anonymous ones included) can make it write:
//   - a line is at most AUDIT_MAX_LINE_BYTES, counted after JSON escaping (a control character
//     becomes six bytes, so a limit on characters would not bound the file);
//   - the file rotates by size, and audit.log plus its rotated files stay under `maxBytes`;
//   - entries that repeat (same identity, action and kind of result) are rate limited per kind: past a
//     burst, they are counted, and one summary line ("N similar entries suppressed") replaces them.

import fs from 'node:fs';
import path from 'node:path';
import type { Paths } from '../core/paths.js';
import { rotateFiles } from '../core/rotate-file.js';
import type { Logger } from '../core/logger.js';

export type AuditAction = 'run' | 'sudo_run' | 'sudo_denied' | 'privileged_service' | 'request_denied';

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
  /** For a request refused before it reached its handler's work: the request's type. */
  request?: string;
  /** The service a refused request named. */
  service?: string;
}

/** At most this many arguments are written; the rest are counted in `argv_count`. */
export const AUDIT_MAX_ARGS = 256;
/** The argv array's share of a line, in bytes after escaping. */
export const AUDIT_MAX_ARGV_BYTES = 8192;
/** Each free text (reason, denial, error message, pattern, service), in bytes after escaping. */
export const AUDIT_MAX_TEXT_BYTES = 1024;
/** No line is longer than this (the fields above, the identity and the time fit with room to spare). */
export const AUDIT_MAX_LINE_BYTES = 16 * 1024;

export interface AuditOptions {
  /** audit.log and its rotated files together stay at or under this many bytes. */
  maxBytes?: number;
  /** Rotated files kept: audit.log.1 (newest) ... audit.log.N. */
  maxFiles?: number;
  /** Entries of one kind written at once before the rate limit applies. */
  burst?: number;
  /** Entries of one kind written per second, sustained. */
  perSecond?: number;
  /** The clock (tests). */
  now?: () => number;
}

const AUDIT_DEFAULTS = {
  maxBytes: 64 * 1024 * 1024,
  maxFiles: 4,
  burst: 50,
  perSecond: 10,
} as const;

/** Each file must hold a few whole lines, so the cap cannot be set below this per file. */
export const AUDIT_MIN_FILE_BYTES = 4 * AUDIT_MAX_LINE_BYTES;
export const AUDIT_MAX_FILES = 20;

/** Kinds of entry tracked for the rate limit at once; beyond it, new kinds share one bucket. */
const MAX_KINDS = 1024;
/** How often pending "suppressed" counts are written. */
const SUMMARY_INTERVAL_MS = 1000;

export function auditFile(paths: Pick<Paths, 'logsDir'>): string {
  return path.join(paths.logsDir, 'audit.log');
}

/** Bytes a string takes in the line, quotes included. */
function escapedBytes(s: string): number {
  return Buffer.byteLength(JSON.stringify(s));
}

/**
 * The longest prefix of `s` whose escaped form (quotes included) fits in `budget` bytes. Only a
 * prefix of about `budget` characters is ever looked at, so a huge argument costs no more than a
 * short one.
 */
function fitEscaped(s: string, budget: number): { text: string; cut: boolean } {
  if (s.length <= budget && escapedBytes(s) <= budget) return { text: s, cut: false };
  let used = 2;
  let end = 0;
  for (const ch of s) {
    const n = escapedBytes(ch) - 2;
    if (used + n > budget) break;
    used += n;
    end += ch.length;
  }
  return { text: s.slice(0, end), cut: true };
}

function boundText(s: string): string {
  return fitEscaped(s, AUDIT_MAX_TEXT_BYTES).text;
}

function boundArgv(argv: readonly string[]): { argv: string[]; cut: boolean } {
  const out: string[] = [];
  let remaining = AUDIT_MAX_ARGV_BYTES - 2;
  for (let i = 0; i < argv.length; i++) {
    if (i >= AUDIT_MAX_ARGS) return { argv: out, cut: true };
    const a = String(argv[i]);
    const cost = i > 0 ? 1 : 0;
    const fit = fitEscaped(a, remaining - cost);
    if (fit.cut) {
      if (remaining - cost >= 2) out.push(fit.text);
      return { argv: out, cut: true };
    }
    out.push(a);
    remaining -= cost + escapedBytes(a);
  }
  return { argv: out, cut: false };
}

function boundResult(result: AuditResult): AuditResult {
  if ('denied' in result) return { denied: boundText(result.denied) };
  if ('error' in result) {
    return {
      error: boundText(result.error),
      ...(result.message !== undefined ? { message: boundText(result.message) } : {}),
    };
  }
  return result;
}

/** The line written for an entry (with its trailing newline), at most AUDIT_MAX_LINE_BYTES. */
export function formatAuditLine(entry: AuditEntry, now = new Date()): string {
  const argv = boundArgv(entry.argv);
  const record: Record<string, unknown> = {
    time: now.toISOString(),
    identity: boundText(entry.identity),
    action: entry.action,
    argv: argv.argv,
    reason: entry.reason === null ? null : boundText(entry.reason),
    result: boundResult(entry.result),
  };
  if (argv.cut) {
    record.argv_truncated = true;
    record.argv_count = entry.argv.length;
  }
  if (entry.as !== undefined) record.as = boundText(entry.as);
  if (entry.pattern !== undefined) record.pattern = boundText(entry.pattern);
  if (entry.request !== undefined) record.request = boundText(entry.request);
  if (entry.service !== undefined) record.service = boundText(entry.service);
  return JSON.stringify(record) + '\n';
}

/** Entries count as "similar" when they share identity, action and the kind of result. */
function kindOf(entry: AuditEntry): { key: string; result: string } {
  const r = entry.result;
  const result = 'exit_code' in r ? 'exit' : 'pid' in r ? 'pid' : 'denied' in r ? 'denied' : `error:${r.error}`;
  return { key: `${entry.identity}\0${entry.action}\0${entry.request ?? ''}\0${result}`, result };
}

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
  identity: string;
  action: AuditAction;
  request: string | undefined;
  result: string;
}

export interface Audit {
  record(entry: AuditEntry): void;
}

export class AuditLog implements Audit {
  readonly file: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  /** Each file's share of maxBytes. */
  readonly fileBytes: number;
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();
  private summaryTimer: NodeJS.Timeout | null = null;

  constructor(
    file: string,
    private readonly log: Logger,
    options: AuditOptions = {},
  ) {
    this.file = file;
    this.maxFiles = Math.max(0, Math.min(AUDIT_MAX_FILES, Math.floor(options.maxFiles ?? AUDIT_DEFAULTS.maxFiles)));
    this.fileBytes = Math.max(
      AUDIT_MIN_FILE_BYTES,
      Math.floor((options.maxBytes ?? AUDIT_DEFAULTS.maxBytes) / (this.maxFiles + 1)),
    );
    this.maxBytes = this.fileBytes * (this.maxFiles + 1);
    this.burst = Math.max(1, options.burst ?? AUDIT_DEFAULTS.burst);
    this.perSecond = Math.max(0, options.perSecond ?? AUDIT_DEFAULTS.perSecond);
    this.now = options.now ?? Date.now;
  }

  /** Appends one entry, or counts it when its kind is over its rate. Never throws. */
  record(entry: AuditEntry): void {
    const { key, result } = kindOf(entry);
    const bucket = this.bucketFor(key, entry, result);
    const now = this.now();
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    if (bucket.tokens < 1) {
      bucket.suppressed++;
      this.scheduleSummary();
      return;
    }
    bucket.tokens -= 1;
    // The count of what was left out goes first, so the file stays in time order.
    if (bucket.suppressed > 0) this.writeSummary(bucket);
    let line: string;
    try {
      line = formatAuditLine(entry, new Date(now));
    } catch (err) {
      this.log.error(`audit: could not format an entry for ${entry.identity} ${entry.action}: ${String(err)}`);
      return;
    }
    this.append(line);
  }

  /** Writes the pending "suppressed" summaries now (at shutdown; otherwise a timer does it). */
  flush(): void {
    if (this.summaryTimer !== null) {
      clearTimeout(this.summaryTimer);
      this.summaryTimer = null;
    }
    for (const [key, bucket] of this.buckets) {
      if (bucket.suppressed > 0) this.writeSummary(bucket);
      // A full bucket with nothing pending is the same as no bucket: forget it.
      else if (bucket.tokens + ((this.now() - bucket.at) / 1000) * this.perSecond >= this.burst)
        this.buckets.delete(key);
    }
  }

  private bucketFor(key: string, entry: AuditEntry, result: string): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket !== undefined) return bucket;
    if (this.buckets.size >= MAX_KINDS) {
      this.flush();
      if (this.buckets.size >= MAX_KINDS) {
        // Still full of kinds over their rate: the newcomers share one bucket.
        const overflow = '\0overflow';
        bucket = this.buckets.get(overflow);
        if (bucket === undefined) {
          bucket = {
            tokens: this.burst,
            at: this.now(),
            suppressed: 0,
            identity: '*',
            action: entry.action,
            request: undefined,
            result: '*',
          };
          this.buckets.set(overflow, bucket);
        }
        return bucket;
      }
    }
    bucket = {
      tokens: this.burst,
      at: this.now(),
      suppressed: 0,
      identity: entry.identity,
      action: entry.action,
      request: entry.request,
      result,
    };
    this.buckets.set(key, bucket);
    return bucket;
  }

  private scheduleSummary(): void {
    if (this.summaryTimer !== null) return;
    this.summaryTimer = setTimeout(() => {
      this.summaryTimer = null;
      this.flush();
    }, SUMMARY_INTERVAL_MS);
    this.summaryTimer.unref();
  }

  private writeSummary(bucket: Bucket): void {
    const count = bucket.suppressed;
    bucket.suppressed = 0;
    const record: Record<string, unknown> = {
      time: new Date(this.now()).toISOString(),
      identity: boundText(bucket.identity),
      action: 'suppressed',
      similar: {
        action: bucket.action,
        result: bucket.result,
        ...(bucket.request !== undefined ? { request: bucket.request } : {}),
      },
      count,
      message: `${count} similar entries suppressed`,
    };
    this.append(JSON.stringify(record) + '\n');
  }

  private append(line: string): void {
    const bytes = Buffer.from(line);
    let fd: number | null = null;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      fd = this.open();
      const st = fs.fstatSync(fd);
      if (st.size > 0 && st.size + bytes.length > this.fileBytes) {
        fs.closeSync(fd);
        fd = null;
        rotateFiles(this.file, this.maxFiles);
        fd = this.open();
      }
      fs.writeSync(fd, bytes);
    } catch (err) {
      this.log.error(
        `audit: could not write to ${this.file}: ${err instanceof Error ? err.message : String(err)}; lost entry: ${line.trimEnd().slice(0, 2000)}`,
      );
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

  /**
   * Opened per entry: a rotated or deleted log is simply recreated. O_NOFOLLOW: a symlink planted at
   * this path must not redirect the audit trail into another file. A looser mode is tightened.
   */
  private open(): number {
    const fd = fs.openSync(
      this.file,
      fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
      0o600,
    );
    try {
      const st = fs.fstatSync(fd);
      if ((st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return fd;
  }
}

/** An audit sink that keeps entries in memory (tests, or a daemon with auditing unavailable). */
export class MemoryAudit implements Audit {
  readonly entries: AuditEntry[] = [];
  record(entry: AuditEntry): void {
    this.entries.push(entry);
  }
}
