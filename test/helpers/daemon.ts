// Polling a test daemon over its socket with the in-process client. A wait on a daemon's state or on a
// line in a service's log would otherwise start the `adi` CLI (a node process, ~70 ms of CPU) at every
// poll; where the CLI's own output is what a test checks, the test still asks the CLI once the wait is
// over.

import { DaemonClient } from '../../src/client/client.js';
import type { ServiceInfo } from '../../src/protocol/types.js';

async function withClient<T>(env: NodeJS.ProcessEnv, ask: (client: DaemonClient) => Promise<T>): Promise<T> {
  const client = new DaemonClient({ env });
  try {
    return await ask(client);
  } finally {
    client.close();
  }
}

/** The daemon's services, as `adi daemon services --json` would list them. */
export function listServices(env: NodeJS.ProcessEnv): Promise<ServiceInfo[]> {
  return withClient(env, (client) => client.listServices());
}

/**
 * The last `lines` lines of a service's log, one per line, or '' while the daemon or the service is
 * not there yet (as the CLI's stdout would be then).
 */
export async function serviceLog(env: NodeJS.ProcessEnv, name: string, lines = 100): Promise<string> {
  try {
    return (await withClient(env, (client) => client.serviceLogs(name, { lines }))).join('\n') + '\n';
  } catch {
    return '';
  }
}

/**
 * Start the daemon of this environment as `adi daemon start` does (spawned detached from bin/adi.js,
 * awaited until it answers a ping) and return its pid: for tests to which a running daemon is set-up,
 * not what they check (that start is tested through the CLI in test/server/lifecycle.test.ts).
 */
export async function startDaemon(env: NodeJS.ProcessEnv): Promise<number> {
  return (await withClient(env, (client) => client.ensureRunning())).pid;
}
