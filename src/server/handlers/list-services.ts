import { reports, type Handler } from '../context.js';

// A daemon just started answers at once but loads its definitions after: a listing waits for them.
export const handleListServices: Handler<'ListServices'> = async (_req, { daemon }) => {
  await daemon.services.whenLoaded();
  return { type: 'Services', list: daemon.services.list(), ...reports(daemon) };
};
