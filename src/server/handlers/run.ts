// Run: the executor runs the command as ADI_USER (with separation) or as the daemon's
// user, audits it, and kills it when the client cancels or leaves (ctx.signal).

import type { Handler } from '../context.js';

export const handleRun: Handler<'Run'> = (req, ctx) =>
  ctx.daemon.executor.run(ctx.identity, req, { signal: ctx.signal, holdOutput: (release) => ctx.afterSend(release) });
