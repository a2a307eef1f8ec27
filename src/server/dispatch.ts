// The dispatch table: one handler per routed request kind, typed by the request table
// (protocol/requests.ts), which also says who may send each. A new request is one entry there and one
// handler here. Hello and Cancel belong to the connection itself, which also checks the access.

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

export type RoutedType = Exclude<RequestType, 'Hello' | 'Cancel'>;

const HANDLERS: { [T in RoutedType]: Handler<T> } = {
  Ping: handlePing,
  Shutdown: handleShutdown,
  StartService: handleStartService,
  StopService: handleStopService,
  RestartService: handleRestartService,
  ListServices: handleListServices,
  ServiceLogs: handleServiceLogs,
  Run: handleRun,
  SudoRun: handleSudoRun,
  Reload: handleReload,
};

export function handlerFor<T extends RoutedType>(type: T): Handler<T> {
  return HANDLERS[type];
}
