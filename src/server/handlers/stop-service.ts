import type { Handler } from '../context.js';

export const handleStopService: Handler<'StopService'> = async (req, { daemon }) => {
  await daemon.services.stop(req.name, req.force);
  return { type: 'Ok' };
};
