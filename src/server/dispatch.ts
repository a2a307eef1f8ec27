// The dispatch table: one route per request kind, naming its handler and who may call it. A new
// request is one handler file and one line here. Hello and Cancel belong to the connection itself.

import type { RequestType } from '../protocol/types.js';
import type { Handler } from './context.js';
import { handleListServices } from './handlers/list-services.js';
import { handlePing } from './handlers/ping.js';
import { handleReload } from './handlers/reload.js';
import { handleRestartService } from './handlers/restart-service.js';
import { handleRun } from './handlers/run.js';
import { handleServiceLogs } from './handlers/service-logs.js';
import { handleShutdown } from './handlers/shutdown.js';
import { handleStartService } from './handlers/start-service.js';
import { handleStopService } from './handlers/stop-service.js';
import { handleSudoRun } from './handlers/sudo-run.js';

/** Who may send a request: anyone (even before Hello), a plugin service, or only the admin. */
export type Access = 'anyone' | 'plugin' | 'admin';

export type RoutedType = Exclude<RequestType, 'Hello' | 'Cancel'>;

interface Route<T extends RoutedType> {
  access: Access;
  handler: Handler<T>;
}

type Table = { [T in RoutedType]: Route<T> };

const TABLE: Table = {
  Ping: { access: 'anyone', handler: handlePing },
  Shutdown: { access: 'admin', handler: handleShutdown },
  // Plugins may start defined services by name (on demand); the handler refuses ad-hoc configs and
  // privileged services from them.
  StartService: { access: 'plugin', handler: handleStartService },
  // A plugin may stop, restart and read the logs of its own plugin's services only (handlers, access.ts).
  StopService: { access: 'plugin', handler: handleStopService },
  RestartService: { access: 'plugin', handler: handleRestartService },
  ListServices: { access: 'plugin', handler: handleListServices },
  ServiceLogs: { access: 'plugin', handler: handleServiceLogs },
  // A plugin's SudoRun is held to its own approved patterns (handler and executor).
  Run: { access: 'plugin', handler: handleRun },
  SudoRun: { access: 'plugin', handler: handleSudoRun },
  Reload: { access: 'admin', handler: handleReload },
};

export function routeFor<T extends RoutedType>(type: T): Route<T> {
  return TABLE[type];
}
