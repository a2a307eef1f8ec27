// A service's life, in one place: which state follows which, on what event, and what must happen then.
// Pure (no processes, no clock): service.ts feeds it events and carries out the effects it returns.
//
// States (the wire's ServiceState):
//   stopped   no process; nothing pending. The start state, and where a user stop ends.
//   starting  a run's process exists and readiness (ready line, readiness probe) is pending; or an
//             immediate automatic restart is queued.
//   running   a run's process exists and is ready (or has no readiness condition).
//   backoff   the last run exited on its own; an automatic restart is due after a delay.
//   stopping  a stop is ending the run's processes (SIGTERM, stop_timeout, SIGKILL), or crash recovery is
//             ending what the previous daemon left of the service.
//   failed    the run could not be spawned, exited unasked and is not restarted, or the restart limit
//             was hit (max_restarts within the window, see restart-policy.ts).
//
// Transitions (event: from -> to [effect]); an event not listed for a state leaves it as it is:
//
//   spawned        stopped|failed|backoff|starting|running -> starting (readiness pending) | running
//   spawn-failed   any                                     -> failed
//   ready          starting                                -> running
//   stop           starting|running|backoff|stopping       -> stopping
//   previous       any                                     -> stopping          (recovery ends the old run)
//   previous-gone  stopping                                -> stopped
//   stopped        any but failed                          -> stopped           (a stop has finished)
//   exit           stopping                                -> stopping          (the stop finishes it)
//   exit           starting|running, no restart            -> stopped (code 0) | failed
//   exit           starting|running, limit hit             -> failed
//   exit           starting|running, restart in 0 ms       -> starting          [restart after 0 ms]
//   exit           starting|running, restart in d ms       -> backoff           [restart after d ms]
//
// Whether an exit is restarted is decided before the event by the caller (the user's intent, the
// config's restart_on_failure, the restart policy), so the machine stays a table. A due restart goes
// ahead only from backoff or starting (`restartDue`): a stop or start since then wins.
//
// What stays outside the machine, in service.ts: the user's intent (`wantUp`: up after a user start,
// down after a user stop; an exit is restarted only while it is up), `restarting` (a user restart or a
// redefinition is between its stop and its start: the state file still calls it wanted), and each run's
// own `exited` flag (a stale run's exit is not an event of the service).
//
//   stopped/failed --spawned--> starting --ready--> running --exit--> starting | backoff | failed
//        ^                         |                   |                        backoff --spawned--> ...
//        '------ stopped <-- stopping <------ stop ----'

import type { ServiceState } from '../protocol/types.js';

/** What the caller decided for a run that exited unasked. */
export type ExitOutcome =
  | { restart: 'no'; clean: boolean }
  | { restart: 'give-up'; restartsInWindow: number; windowSecs: number }
  | { restart: 'after'; delayMs: number };

export type LifeEvent =
  | { type: 'spawned'; readyPending: boolean }
  | { type: 'spawn-failed' }
  | { type: 'ready' }
  | { type: 'stop' }
  | { type: 'previous' }
  | { type: 'previous-gone' }
  | { type: 'stopped' }
  | { type: 'exit'; outcome: ExitOutcome };

export type LifeEffect = { type: 'restart-after'; delayMs: number };

export interface Transition {
  state: ServiceState;
  effects: LifeEffect[];
}

const NONE: LifeEffect[] = [];

function stay(state: ServiceState): Transition {
  return { state, effects: NONE };
}

/** The state after `event` in `state`, and what the caller must do. */
export function next(state: ServiceState, event: LifeEvent): Transition {
  switch (event.type) {
    case 'spawned':
      return state === 'stopping' ? stay(state) : stay(event.readyPending ? 'starting' : 'running');
    case 'spawn-failed':
      return stay('failed');
    case 'ready':
      return stay(state === 'starting' ? 'running' : state);
    case 'stop':
      return stay(state === 'stopped' || state === 'failed' ? state : 'stopping');
    case 'previous':
      return stay('stopping');
    case 'previous-gone':
      return stay(state === 'stopping' ? 'stopped' : state);
    case 'stopped':
      return stay(state === 'failed' ? state : 'stopped');
    case 'exit':
      return onExit(state, event.outcome);
  }
}

function onExit(state: ServiceState, outcome: ExitOutcome): Transition {
  if (state !== 'starting' && state !== 'running') return stay(state);
  switch (outcome.restart) {
    case 'no':
      return stay(outcome.clean ? 'stopped' : 'failed');
    case 'give-up':
      return stay('failed');
    case 'after':
      return {
        state: outcome.delayMs === 0 ? 'starting' : 'backoff',
        effects: [{ type: 'restart-after', delayMs: outcome.delayMs }],
      };
  }
}

/** Whether a restart that has come due may still spawn (a stop or a start since its decision wins). */
export function restartDue(state: ServiceState): boolean {
  return state === 'backoff' || state === 'starting';
}

/** A process is (or is about to be) running for the service, or a restart is pending. */
export function isActiveState(state: ServiceState): boolean {
  return state === 'starting' || state === 'running' || state === 'backoff' || state === 'stopping';
}
