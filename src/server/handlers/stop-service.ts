import { requireOwnService } from '../access.js';
import type { Handler } from '../context.js';

export const handleStopService: Handler<'StopService'> = async (req, { daemon, identity }) => {
  requireOwnService(daemon, identity, req.name, 'stop');
  await daemon.services.stop(req.name, req.force);
  return { type: 'Ok' };
};
