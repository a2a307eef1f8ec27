// The request table: for every request kind, the final answer it gets, the stream frames that may come
// before it, and who may send it. The daemon's dispatch table is typed from it (a handler must return
// the declared answer), the client's call() is typed from it (it returns the declared answer), and a
// test checks docs/protocol.md's tables against it. A new request is one entry here, its fields in
// types.ts and validate.ts, and one handler.

import type { CommandResult, Ok, Pong, RequestType, ResponseType, Services, StreamEnd, Welcome } from './types.js';

/** Who may send a request: anyone (even before Hello), a plugin service (and the admin), or only the admin. */
export type Access = 'anyone' | 'plugin' | 'admin';

/** An Ok that always carries the named optional fields. */
export type OkWith<K extends keyof Omit<Ok, 'type'>> = Ok & Required<Pick<Ok, K>>;

/** The final answer to each request (an Error may come instead of any of them). */
export interface Answers {
  Hello: Welcome;
  Ping: Pong;
  Shutdown: Ok;
  /** The service as it is once spawned: the caller needs no ListServices to learn its pid. */
  StartService: OkWith<'service'>;
  StopService: Ok;
  RestartService: OkWith<'service'>;
  ListServices: Services;
  ServiceLogs: StreamEnd;
  Run: CommandResult;
  /** A refusal is an Error with code SUDO_DENIED. */
  SudoRun: CommandResult;
  Cancel: Ok;
  Reload: OkWith<'reload'>;
}

export type AnswerTo<T extends RequestType> = Answers[T];

interface RequestSpec<T extends RequestType> {
  readonly access: Access;
  /** The `type` of the final answer; the same as Answers[T]['type'], kept as a value for the docs test. */
  readonly answer: Answers[T]['type'];
  /** The `type` of the stream frames before it, if any. */
  readonly stream?: ResponseType;
  /** Optional fields of the answer's type that this answer always carries (a client checks them). */
  readonly carries?: readonly (keyof Answers[T] & string)[];
}

export const REQUESTS: { readonly [T in RequestType]: RequestSpec<T> } = {
  // Hello is answered by the connection itself, before any identity exists.
  Hello: { access: 'anyone', answer: 'Welcome' },
  Ping: { access: 'anyone', answer: 'Pong' },
  Shutdown: { access: 'admin', answer: 'Ok' },
  // Plugins may start defined services by name (on demand); the handler refuses ad-hoc configs and
  // privileged services from them.
  StartService: { access: 'plugin', answer: 'Ok', carries: ['service'] },
  // A plugin may stop, restart and read the logs of its own plugin's services only (handlers, access.ts).
  StopService: { access: 'plugin', answer: 'Ok' },
  RestartService: { access: 'plugin', answer: 'Ok', carries: ['service'] },
  ListServices: { access: 'plugin', answer: 'Services' },
  ServiceLogs: { access: 'plugin', answer: 'StreamEnd', stream: 'LogBatch' },
  // A plugin's SudoRun is held to its own approved patterns (handler and executor).
  Run: { access: 'plugin', answer: 'CommandResult' },
  SudoRun: { access: 'plugin', answer: 'CommandResult' },
  // Only streams of the sender's own connection can be cancelled; an anonymous one has none.
  Cancel: { access: 'plugin', answer: 'Ok' },
  Reload: { access: 'admin', answer: 'Ok', carries: ['reload'] },
};
