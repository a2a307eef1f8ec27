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

export class AdiError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdiError';
    this.code = code;
  }
}

/** Wrap anything thrown into an AdiError, keeping the original as `cause`. */
export function toAdiError(err: unknown, fallback: ErrorCode = 'INTERNAL'): AdiError {
  if (err instanceof AdiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AdiError(fallback, message, { cause: err });
}
