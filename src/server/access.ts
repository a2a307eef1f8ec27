// Which services a plugin identity may act on (docs/security.md section 8). The dispatch table says
// who may send a request at all; for the requests a plugin may send about a named service, this says
// whether that service is its own: defined by that plugin (source 'plugin', same plugin name).

import { AdiError } from '../core/errors.js';
import { pluginOf } from '../services/launch.js';
import type { Identity } from '../core/identity.js';
import type { DaemonState } from './context.js';

/** Whether `identity` is the admin, or the plugin that defined service `name`. */
export function ownsService(daemon: DaemonState, identity: Identity, name: string): boolean {
  if (identity.kind === 'admin') return true;
  if (identity.kind !== 'plugin' || identity.plugin === null) return false;
  const def = daemon.services.definition(name);
  return def !== undefined && pluginOf(def, name) === identity.plugin;
}

/** Throws PERMISSION_DENIED unless `identity` owns service `name` (see ownsService). */
export function requireOwnService(daemon: DaemonState, identity: Identity, name: string, action: string): void {
  if (ownsService(daemon, identity, name)) return;
  // An unknown name is answered like someone else's: a plugin learns nothing from the difference.
  throw new AdiError(
    'PERMISSION_DENIED',
    `${identity.label} may ${action} only its own plugin's services, and ${JSON.stringify(name)} is not one of them.`,
  );
}
