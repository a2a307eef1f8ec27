import { AdiError } from '../../core/errors.js';
import { wireText, type Handler } from '../context.js';

export const handleStartService: Handler<'StartService'> = async (req, { daemon, identity }) => {
  if (identity.kind !== 'admin') {
    if (req.config != null) {
      // A plugin may start defined services on demand, never describe a new one (least of all a privileged one).
      throw new AdiError(
        'PERMISSION_DENIED',
        `Only the admin may start an ad-hoc service; ${identity.label} may start defined services by name.`,
      );
    }
    // A privileged service runs as root: only the admin decides when.
    if (daemon.services.definition(req.name)?.config.privileged === true) {
      throw new AdiError(
        'PERMISSION_DENIED',
        `Service ${JSON.stringify(req.name)} is privileged (it runs as root); only the admin may start it.`,
      );
    }
  }
  const started = await daemon.services.start(req.name, req.config ?? null);
  const service = daemon.services.get(req.name) ?? started;
  // Started with its last valid definition while the file holds a broken newer one: say so.
  const errors = req.config == null ? daemon.services.definitionErrors(req.name) : [];
  return errors.length === 0
    ? { type: 'Ok', service }
    : { type: 'Ok', service, config_errors: errors.slice(0, 50).map(wireText) };
};
