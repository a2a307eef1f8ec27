// The package's public surface: the client plugins use, its errors and the protocol types.
// Daemon internals stay internal.

export {
  DaemonClient,
  formatEntry,
  type DaemonClientOptions,
  type LogEntry,
  type LogOptions,
  type LogStream,
  type PongInfo,
  type RawLogBatch,
  type StartedService,
} from './client/client.js';
export { REQUESTS, type Access, type Answers, type AnswerTo } from './protocol/requests.js';
export { AdiError, ERROR_CODES, isErrorCode, type ErrorCode } from './core/errors.js';
export { resolvePaths, type Endpoint, type Paths } from './core/paths.js';
export * from './protocol/types.js';
export { packageVersion } from './core/version.js';
