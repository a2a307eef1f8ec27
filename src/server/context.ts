// What a request handler sees: the daemon's parts, who is asking, and a way to send stream frames.
// Handlers never touch the socket; the connection module owns framing and ids.

import type { Paths } from '../core/paths.js';
import type { AnswerTo } from '../protocol/requests.js';
import type { PluginSocketStatus, RequestType, Response } from '../protocol/types.js';
import type { CheckedRequestOf } from '../protocol/validate.js';
import type { Executor } from '../executor/executor.js';
import type { ReloadResult, ServiceManager } from '../services/manager.js';
import type { Identity } from '../core/identity.js';
import type { Logger } from '../core/logger.js';

export interface DaemonState {
  readonly paths: Paths;
  readonly log: Logger;
  readonly version: string;
  /** Date.now() when the daemon started. */
  readonly startedAt: number;
  readonly services: ServiceManager;
  /** Run and SudoRun: identity rules, limits, audit. */
  readonly executor: Executor;
  /** Whether privilege separation (the adi / adi-root users) is active, as last checked. */
  separation(): boolean;
  /** Whether plugin services can reach the daemon (the plugin socket), for Ping; null: separation is off. */
  pluginSocket(): PluginSocketStatus | null;
  /** Reload: check separation again, re-read the service definitions, revoke tokens of gone plugins. */
  reload(): Promise<ReloadResult>;
  /** Begin a shutdown; the current response is still sent first. */
  requestShutdown(graceful: boolean): void;
  /** What is degraded now (the daemon's and the services' parts), for Pong and Services. */
  problems(): string[];
}

/** Name conflicts, the definitions' errors and what is degraded, as Pong and Services carry them (absent when empty). */
export function reports(daemon: DaemonState): { conflicts?: string[]; config_errors?: string[]; problems?: string[] } {
  const conflicts = daemon.services.conflicts();
  const config = daemon.services.configErrors();
  const problems = daemon.problems();
  return {
    ...(conflicts.length > 0 ? { conflicts: conflicts.map(wireText) } : {}),
    ...(config.length > 0 ? { config_errors: config.map(wireText) } : {}),
    ...(problems.length > 0 ? { problems: problems.map(wireText) } : {}),
  };
}

/** A report line as the protocol allows it: no NUL, at most 4 KiB. */
export function wireText(s: string): string {
  const clean = s.replaceAll('\0', '\\0');
  return clean.length > 4096 ? `${clean.slice(0, 4095)}…` : clean;
}

export interface RequestContext {
  readonly daemon: DaemonState;
  readonly identity: Identity;
  /** The request's id. */
  readonly id: number;
  /**
   * Send an intermediate frame of a stream (e.g. LogLine) with this request's id. Returns false when
   * the connection is gone or its outgoing buffer is past its bound: the handler must then end the
   * stream (the client is too slow or has left).
   */
  send(response: Response): boolean;
  /**
   * Wait until the connection can take the next frame of a stream; resolves with the bytes that frame
   * may carry, or 0 once the request is cancelled or the connection is gone (then end the stream).
   * Frames are produced only as fast as the client reads them: nothing piles up in the daemon.
   */
  streamRoom(): Promise<number>;
  /** Aborted when the client cancels this request or the connection closes. */
  readonly signal: AbortSignal;
  /**
   * Calls `fn` once the request's final answer has been handed to the operating system, or the
   * connection is gone: what a handler holds for the answer (a command's output) is released then.
   */
  afterSend(fn: () => void): void;
}

/** One handler per request kind; what it returns is the final frame for the request's id: the answer the request table declares. */
export type Handler<T extends RequestType> = (
  request: CheckedRequestOf<T>,
  ctx: RequestContext,
) => Promise<AnswerTo<T>> | AnswerTo<T>;
