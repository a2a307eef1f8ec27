import type { Handler } from '../context.js';

export const handleRestartService: Handler<'RestartService'> = async (req, { daemon }) => {
  await daemon.services.restart(req.name);
  return { type: 'Ok' };
};
