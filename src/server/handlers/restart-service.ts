import { requireOwnService } from '../access.js';
import type { Handler } from '../context.js';

export const handleRestartService: Handler<'RestartService'> = async (req, { daemon, identity }) => {
  requireOwnService(daemon, identity, req.name, 'restart');
  const restarted = await daemon.services.restart(req.name);
  return { type: 'Ok', service: daemon.services.get(req.name) ?? restarted };
};
