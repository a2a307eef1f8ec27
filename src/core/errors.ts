// One error type for both sides of the wire. The `code` is stable: the CLI picks its exit code and its
// hint from it, and a client in another language matches on it, never on message text.

export const ERROR_CODES = [
  // client side
  'DAEMON_NOT_RUNNING',
  'DAEMON_START_FAILED',
  'CONNECTION_CLOSED',
  'TIMEOUT',
  'VERSION_MISMATCH',
  // protocol
  'BAD_FRAME',
  'FRAME_TOO_LARGE',
  'BAD_REQUEST',
  'UNKNOWN_REQUEST',
  'NOT_IMPLEMENTED',
  'UNAUTHORIZED',
  'PERMISSION_DENIED',
  'CANCELLED',
  'SLOW_CONSUMER',
  'SHUTTING_DOWN',
  // configuration and paths
  'BAD_CONFIG',
  'PATH_TOO_LONG',
  'BAD_ARGUMENT',
  // services
  'SERVICE_NOT_FOUND',
  'SERVICE_EXISTS',
  'BAD_SERVICE_NAME',
  'SPAWN_FAILED',
  // command execution
  'COMMAND_NOT_FOUND',
  'COMMAND_TIMEOUT',
  'OUTPUT_TOO_LARGE',
  'TOO_MANY_COMMANDS',
  'SUDO_DENIED',
  // plugins
  'BAD_MANIFEST',
  'PLUGIN_NOT_FOUND',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && CODE_SET.has(value);
}

/**
 * Facts about an error for programs, beside the message for people; travels as the Error frame's
 * `data`. Only the fields that apply are set.
 */
export interface ErrorData {
  /** The operating system's error name behind it (ENOENT, EACCES, ...), e.g. why a spawn failed. */
  errno?: string;
  /** SUDO_DENIED: which rule refused, one of SUDO_DENIAL_RULES (a newer daemon may add rules). */
  rule?: string;
  /** SUDO_DENIED: the command as resolved (absolute program, then its arguments) when it got that far. */
  command?: string[];
  /** SUDO_DENIED by `not_approved`: the caller's approved patterns the command was matched against. */
  patterns?: string[];
  /** SUDO_DENIED after a pattern allowed the command (`untrusted_program`, `files_changed`): that pattern. */
  pattern?: string;
}

/**
 * Why a SudoRun was refused, for programs (the message says it for people). Stable: a client may
 * branch on them; a new rule is only ever added.
 */
export const SUDO_DENIAL_RULES = [
  'anonymous',
  'no_separation',
  'no_reason',
  'reason_too_long',
  'bad_command',
  'blanket_root',
  'not_approved',
  'untrusted_program',
  'files_changed',
  'no_sudo',
  'no_plan',
] as const;

export type SudoDenialRule = (typeof SUDO_DENIAL_RULES)[number];

export class AdiError extends Error {
  readonly code: ErrorCode;
  readonly data: ErrorData | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; data?: ErrorData }) {
    super(message, options);
    this.name = 'AdiError';
    this.code = code;
    this.data = options?.data ?? errnoOf(options?.cause);
  }
}

/** The errno name of a Node system error (a failed spawn, open, connect). */
function errnoOf(cause: unknown): ErrorData | undefined {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  return typeof errno === 'string' && /^E[A-Z0-9]+$/.test(errno) ? { errno } : undefined;
}

/** Wrap anything thrown into an AdiError, keeping the original as `cause`. */
export function toAdiError(err: unknown, fallback: ErrorCode = 'INTERNAL'): AdiError {
  if (err instanceof AdiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AdiError(fallback, message, { cause: err });
}
