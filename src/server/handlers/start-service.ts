import { AdiError } from '../../errors.js';
import type { Handler } from '../context.js';

export const handleStartService: Handler<'StartService'> = async (req, { daemon, identity }) => {
  if (req.config != null && identity.kind !== 'admin') {
    // A plugin may start defined services on demand, never describe a new one (least of all a privileged one).
    throw new AdiError('PERMISSION_DENIED', `Only the admin may start an ad-hoc service; ${identity.label} may start defined services by name.`);
  }
  await daemon.services.start(req.name, req.config ?? null);
  return { type: 'Ok' };
};
