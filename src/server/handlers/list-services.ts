import type { Handler } from '../context.js';

export const handleListServices: Handler<'ListServices'> = (_req, { daemon }) => ({
  type: 'Services',
  list: daemon.services.list(),
  conflicts: daemon.services.conflicts(),
});
