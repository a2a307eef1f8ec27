// Run and SudoRun: who a command runs as,
// who may run what as root, and the audit trail of both. Handlers call this; it knows nothing of sockets.
//
//   Run      as ADI_USER when separation is active (directly by uid/gid when the daemon is root, else
//            through `sudo -n -u ADI_USER`), otherwise as the daemon's own user (system/run-as.ts plans
//            it, as for services).
//   SudoRun  only with separation; through `sudo -n -u ADI_ROOT_USER -- sudo -n -- /abs/cmd args...`.
//            The admin may run anything (root-equivalent after setup anyway); a plugin only what its own
//            approved patterns allow, argv-wise; anonymous callers nothing.

import { AdiError, toAdiError, type ErrorData, type SudoDenialRule } from '../core/errors.js';
import type { Paths } from '../core/paths.js';
import type { CommandResult, Request, Run, SudoDenied, SudoRun } from '../protocol/types.js';
import { LIMITS } from '../protocol/validate.js';
import type { Identity } from '../core/identity.js';
import type { Logger } from '../core/logger.js';
import type { Audit, AuditResult } from './audit.js';
import { IDENTITY_DEFAULTS, IdentityBudgets, type CommandLease } from './budget.js';
import { compilePattern, matchAny, type CompiledPattern } from '../system/patterns.js';
import type { SeparationStatus, SetupLocations } from '../system/privilege.js';
import { resolveCommand, untrustedReason } from '../system/resolve.js';
import { PrivilegeFacts, planCommand, type CommandPlan } from '../system/run-as.js';
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_TIMEOUT_MS,
  runCommand,
  type RunOptions,
  type RunOutput,
} from '../system/run.js';

export interface ExecutorLimits {
  timeoutMs: number;
  /** One command's output (a request may lower it). */
  maxOutputBytes: number;
  /** Per identity, across all its requests in flight (budget.ts). */
  maxCommands: number;
  outputBudgetBytes: number;
}

export interface ExecutorOptions {
  paths: Paths;
  log: Logger;
  audit: Audit;
  /** The daemon's own limits; a request may only lower them. */
  limits?: Partial<ExecutorLimits>;
  /** A separation status already known (the daemon's cached one). Checked on the system when absent. */
  separation?: SeparationStatus;
  locations?: SetupLocations;
}

export interface ExecOptions {
  /** Abort (client cancelled or left): the command's group is killed, the call rejects with CANCELLED. */
  signal?: AbortSignal;
  /**
   * Given, the result's output stays counted against the identity's output budget until the caller
   * calls `release` (once the answer has left the daemon); otherwise it is released on return.
   */
  holdOutput?: (release: () => void) => void;
  /**
   * SudoRun of a plugin: why its installed files no longer match what its approval covers, or null.
   * Given by the caller, which knows where plugins live; without it a plugin's SudoRun is denied.
   */
  approvedFiles?: (separationActive: boolean) => Promise<string | null>;
}

/** The bound on SudoRun's `reason`, which is shown in the audit log: the wire's, so one value. */
export const MAX_REASON_LENGTH = LIMITS.reason;

export const SETUP_COMMAND = 'sudo adi daemon setup';

/** Where commands run: a directory every user can enter (the admin's home may be 0700). */
const COMMAND_CWD = '/';

export class Executor {
  private readonly paths: Paths;
  private readonly log: Logger;
  private readonly audit: Audit;
  private readonly limits: ExecutorLimits;
  private readonly budgets: IdentityBudgets;
  /** Separation status, ADI_USER's passwd entry, sudo: what Run, SudoRun and services are planned from. */
  readonly facts: PrivilegeFacts;

  constructor(opts: ExecutorOptions) {
    this.paths = opts.paths;
    this.log = opts.log;
    this.audit = opts.audit;
    this.limits = {
      timeoutMs: opts.limits?.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxOutputBytes: opts.limits?.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
      maxCommands: opts.limits?.maxCommands ?? IDENTITY_DEFAULTS.maxCommands,
      outputBudgetBytes: opts.limits?.outputBudgetBytes ?? IDENTITY_DEFAULTS.outputBudgetBytes,
    };
    this.budgets = new IdentityBudgets({
      maxCommands: this.limits.maxCommands,
      outputBudgetBytes: this.limits.outputBudgetBytes,
    });
    this.facts = new PrivilegeFacts(this.paths, opts.locations, opts.separation);
  }

  /** Whether the adi / adi-root users are set up, as last checked. */
  get separation(): SeparationStatus {
    return this.facts.separation();
  }

  /** Checks the system again (after `adi daemon setup` ran while the daemon was up). */
  refreshSeparation(): SeparationStatus {
    return this.facts.refresh();
  }

  /** Run: executes as ADI_USER with separation, else as the daemon's user. Every call is audited. */
  async run(identity: Identity, req: Run, options: ExecOptions = {}): Promise<CommandResult> {
    let auditArgv: string[] = [String(req.command), ...(Array.isArray(req.args) ? req.args.map(String) : [])];
    let as: string | undefined;
    try {
      if (identity.kind === 'anonymous') {
        throw new AdiError(
          'UNAUTHORIZED',
          'Run needs an authenticated identity; an anonymous connection may only Ping.',
        );
      }
      checkArgv(req.command, req.args);
      const limits = this.limitsFor(req);
      const file = resolveCommand(req.command);
      auditArgv = [file, ...req.args];
      const plan = this.plan(false, identity, file, req.args);
      as = plan.as;
      const out = await this.execute(identity, plan, limits, options);
      this.audit.record({
        identity: identity.label,
        action: 'run',
        argv: auditArgv,
        reason: null,
        result: { exit_code: out.exit_code, signal: out.signal },
        as,
      });
      return {
        type: 'CommandResult',
        exit_code: out.exit_code,
        stdout: out.stdout,
        stderr: out.stderr,
        signal: out.signal,
      };
    } catch (err) {
      const e = toAdiError(err);
      this.audit.record({
        identity: identity.label,
        action: 'run',
        argv: auditArgv,
        reason: null,
        result: errorResult(e),
        ...(as !== undefined ? { as } : {}),
      });
      throw e;
    }
  }

  /**
   * SudoRun: returns SudoDenied (audited as sudo_denied) when a rule refuses; runs the command as root
   * through ADI_ROOT_USER's sudo otherwise. `approvedPatterns` are the calling plugin's own approved
   * privileged_commands; 'any' is honoured for the admin only.
   */
  async sudoRun(
    identity: Identity,
    req: SudoRun,
    approvedPatterns: readonly string[] | 'any',
    options: ExecOptions = {},
  ): Promise<CommandResult | SudoDenied> {
    let auditArgv: string[] = [String(req.command), ...(Array.isArray(req.args) ? req.args.map(String) : [])];
    const givenReason = typeof req.reason === 'string' ? req.reason : null;
    let resolved = false;
    const deny = (
      rule: SudoDenialRule,
      why: string,
      extra: Pick<ErrorData, 'patterns' | 'pattern'> = {},
    ): SudoDenied => {
      this.audit.record({
        identity: identity.label,
        action: 'sudo_denied',
        argv: auditArgv,
        reason: givenReason,
        result: { denied: why },
      });
      return { type: 'SudoDenied', reason: why, data: { rule, ...(resolved ? { command: auditArgv } : {}), ...extra } };
    };

    if (identity.kind === 'anonymous') {
      return deny('anonymous', 'SudoRun needs an authenticated identity; an anonymous connection may only Ping.');
    }
    const sep = this.facts.separation();
    if (!sep.active) {
      // Most reasons already end by naming the setup command; say it once.
      const how = sep.reason.includes(SETUP_COMMAND) ? '' : ` An administrator enables it with \`${SETUP_COMMAND}\`.`;
      return deny(
        'no_separation',
        `Nothing may run as root: privilege separation is not set up (${sep.reason}).${how}`,
      );
    }
    if (givenReason === null || givenReason.trim() === '') {
      return deny(
        'no_reason',
        'SudoRun needs a reason: a non-empty sentence saying why root is needed (it goes to the audit log).',
      );
    }
    if (givenReason.length > MAX_REASON_LENGTH) {
      return deny(
        'reason_too_long',
        `The reason is ${givenReason.length} characters long; at most ${MAX_REASON_LENGTH} are accepted.`,
      );
    }
    let file: string;
    let limits: ExecutorLimits;
    try {
      checkArgv(req.command, req.args);
      limits = this.limitsFor(req);
      file = resolveCommand(req.command);
    } catch (err) {
      return deny('bad_command', toAdiError(err).message);
    }
    auditArgv = [file, ...req.args];
    resolved = true;

    let pattern: string | undefined;
    if (identity.kind === 'plugin') {
      if (approvedPatterns === 'any') {
        // Defence in depth: only the admin is root-equivalent; a plugin is always held to its patterns.
        return deny(
          'blanket_root',
          `Plugin ${identity.plugin ?? '?'} has no blanket root access; only its approved privileged_commands may run.`,
        );
      }
      const compiled: CompiledPattern[] = [];
      const unusable: string[] = [];
      for (const text of approvedPatterns) {
        try {
          compiled.push(compilePattern(text));
        } catch (err) {
          unusable.push(`${JSON.stringify(text)}: ${toAdiError(err).message}`);
        }
      }
      const m = matchAny(compiled, file, req.args);
      if (!m.allowed) {
        const extra =
          unusable.length > 0
            ? ` (${unusable.length} approved pattern(s) could not be used here: ${unusable.join('; ')})`
            : '';
        return deny('not_approved', `Plugin ${identity.plugin ?? '?'} may not run this as root: ${m.reason}.${extra}`, {
          patterns: [...approvedPatterns],
        });
      }
      const matched = m.pattern;
      pattern = matched;
      // A binary the plugin user could replace would turn any pattern into full root.
      const untrusted = untrustedReason(file);
      if (untrusted !== null) {
        return deny('untrusted_program', `${file} is not safe to run as root for a plugin: ${untrusted}.`, {
          pattern: matched,
        });
      }
      // An approval covers the files it was given: changed since (by hand, a half-written update), nothing runs.
      const changed =
        options.approvedFiles === undefined
          ? `The daemon cannot check that plugin ${identity.plugin ?? '?'}'s files are those approved.`
          : await options.approvedFiles(sep.active);
      if (changed !== null) return deny('files_changed', changed, { pattern: matched });
    }

    if (this.facts.sudo === null) {
      return deny(
        'no_sudo',
        'sudo is not installed, so nothing can run as root; install it and run `' + SETUP_COMMAND + '`.',
      );
    }
    let plan: CommandPlan;
    try {
      plan = this.plan(true, identity, file, req.args);
    } catch (err) {
      return deny('no_plan', toAdiError(err).message);
    }
    const base = {
      identity: identity.label,
      action: 'sudo_run' as const,
      argv: auditArgv,
      reason: givenReason,
      as: 'root',
      ...(pattern !== undefined ? { pattern } : {}),
    };
    try {
      const out = await this.execute(identity, plan, limits, options);
      this.audit.record({ ...base, result: { exit_code: out.exit_code, signal: out.signal } });
      return {
        type: 'CommandResult',
        exit_code: out.exit_code,
        stdout: out.stdout,
        stderr: out.stderr,
        signal: out.signal,
      };
    } catch (err) {
      const e = toAdiError(err);
      this.audit.record({ ...base, result: errorResult(e) });
      throw e;
    }
  }

  /**
   * Audits a request refused before its handler ran (no identity, or not this identity's to send), and
   * one a handler refused for permission; Run and SudoRun that reach the executor audit themselves.
   */
  auditRefused(identity: Identity, request: Request, error: AdiError): void {
    const r = request as unknown as Record<string, unknown>;
    const argv = typeof r.command === 'string' ? [r.command, ...(Array.isArray(r.args) ? r.args.map(String) : [])] : [];
    const action = request.type === 'Run' ? 'run' : request.type === 'SudoRun' ? 'sudo_denied' : 'request_denied';
    this.audit.record({
      identity: identity.label,
      action,
      argv,
      reason: request.type === 'SudoRun' && typeof r.reason === 'string' ? r.reason : null,
      result: action === 'sudo_denied' ? { denied: error.message } : errorResult(error),
      request: request.type,
      ...(typeof r.name === 'string' ? { service: r.name } : {}),
    });
  }

  /** What `identity` holds now of its budgets (tests, status). */
  usage(identity: Identity): { commands: number; bytes: number } {
    return this.budgets.usage(identity.label);
  }

  /** Runs a planned command within its identity's budgets (TOO_MANY_COMMANDS past the maximum). */
  private async execute(
    identity: Identity,
    plan: CommandPlan,
    limits: ExecutorLimits,
    options: ExecOptions,
  ): Promise<RunOutput> {
    const lease: CommandLease = this.budgets.begin(identity.label);
    let out: RunOutput;
    try {
      out = await runCommand(plan.argv, { ...this.runOptions(plan, limits, options), budget: lease });
    } catch (err) {
      lease.release();
      throw err;
    } finally {
      lease.end();
    }
    if (options.holdOutput !== undefined) options.holdOutput(() => lease.release());
    else lease.release();
    return out;
  }

  /** The daemon's limits, lowered by the request's own (a request can never raise them). */
  private limitsFor(req: Run | SudoRun): ExecutorLimits {
    let { timeoutMs, maxOutputBytes } = this.limits;
    if (req.timeout_secs !== undefined && req.timeout_secs !== null) {
      if (typeof req.timeout_secs !== 'number' || !Number.isFinite(req.timeout_secs) || req.timeout_secs <= 0) {
        throw new AdiError('BAD_ARGUMENT', `timeout_secs must be a positive number, not ${String(req.timeout_secs)}.`);
      }
      timeoutMs = Math.min(timeoutMs, req.timeout_secs * 1000);
    }
    if (req.max_output_bytes !== undefined && req.max_output_bytes !== null) {
      if (
        typeof req.max_output_bytes !== 'number' ||
        !Number.isSafeInteger(req.max_output_bytes) ||
        req.max_output_bytes < 0
      ) {
        throw new AdiError(
          'BAD_ARGUMENT',
          `max_output_bytes must be a whole number of bytes, not ${String(req.max_output_bytes)}.`,
        );
      }
      maxOutputBytes = Math.min(maxOutputBytes, req.max_output_bytes);
    }
    return { ...this.limits, timeoutMs, maxOutputBytes };
  }

  /** Who the command runs as, its argv and environment (system/run-as.ts, shared with services). */
  private plan(privileged: boolean, identity: Identity, file: string, args: string[]): CommandPlan {
    const plan = planCommand(this.facts, privileged, identity.kind === 'plugin', file, args);
    if (plan.groupKiller === undefined && (plan.mode === 'sudo' || plan.mode === 'root-chain') && !this.facts.isRoot) {
      this.log.warn(
        'executor: no kill program in the secure PATH; a timed-out command run through sudo may outlive its limit',
      );
    }
    return plan;
  }

  private runOptions(plan: CommandPlan, limits: ExecutorLimits, options: ExecOptions): RunOptions {
    return {
      timeoutMs: limits.timeoutMs,
      maxOutputBytes: limits.maxOutputBytes,
      env: plan.env,
      cwd: COMMAND_CWD,
      ...(plan.uid !== undefined ? { uid: plan.uid } : {}),
      ...(plan.gid !== undefined ? { gid: plan.gid } : {}),
      ...(plan.groupKiller !== undefined ? { groupKiller: plan.groupKiller } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    };
  }
}

/** The request's argv must be strings without NUL bytes (execve could not pass them anyway). */
function checkArgv(command: unknown, args: unknown): asserts args is string[] {
  if (typeof command !== 'string' || command === '') {
    throw new AdiError('BAD_ARGUMENT', 'The command must be a non-empty string.');
  }
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw new AdiError('BAD_ARGUMENT', 'args must be a list of strings.');
  }
  if (command.includes('\0') || args.some((a: string) => a.includes('\0'))) {
    throw new AdiError('BAD_ARGUMENT', 'The command and its arguments may not contain NUL bytes.');
  }
}

function errorResult(e: AdiError): AuditResult {
  return { error: e.code, message: e.message };
}
