import type { Handler } from '../context.js';

/** Answers Ok first; the daemon then stops its services (graceful) or kills them and exits at once. */
export const handleShutdown: Handler<'Shutdown'> = (req, { daemon, identity }) => {
  daemon.log.info(`shutdown requested by ${identity.label} (graceful: ${req.graceful})`);
  daemon.requestShutdown(req.graceful);
  return { type: 'Ok' };
};
