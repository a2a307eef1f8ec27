import type { Services } from '../../protocol/types.js';
import type { Handler } from '../context.js';

export const handleListServices: Handler<'ListServices'> = (_req, { daemon }) => {
  const response: Services = { type: 'Services', list: daemon.services.list() };
  const conflicts = daemon.services.conflicts();
  if (conflicts.length > 0) response.conflicts = conflicts;
  return response;
};
