// Local-socket transport: listen and connect on an Endpoint (Unix socket file, Linux abstract name,
// Windows named pipe). node:net speaks all three; this module only adds timeouts and clear errors.

import net from 'node:net';
import { AdiError } from '../core/errors.js';
import type { Endpoint } from '../core/paths.js';

export function connect(endpoint: Endpoint, timeoutMs: number): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    let delay = 5;
    const attempt = (): void => {
      const socket = net.createConnection({ path: endpoint.address });
      const timer = setTimeout(
        () => {
          socket.destroy();
          reject(
            new AdiError(
              'TIMEOUT',
              `Connecting to the daemon at ${endpoint.display} took longer than ${timeoutMs} ms.`,
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // EAGAIN on a Unix socket: the daemon's listen backlog is full (a burst of connections). It is
        // busy, not gone: try again shortly, within the same connect timeout.
        if (err.code === 'EAGAIN' && Date.now() + delay < deadline) {
          setTimeout(attempt, delay);
          delay = Math.min(delay * 2, 100);
          return;
        }
        reject(
          err.code === 'EAGAIN'
            ? new AdiError(
                'TIMEOUT',
                `The daemon at ${endpoint.display} is too busy to accept a connection (its backlog stayed full for ${timeoutMs} ms).`,
                { cause: err },
              )
            : connectError(endpoint, err),
        );
      });
    };
    attempt();
  });
}

export function connectError(endpoint: Endpoint, err: NodeJS.ErrnoException): AdiError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new AdiError(
        'DAEMON_NOT_RUNNING',
        `The daemon is not running (nothing answers at ${endpoint.display}). Start it with 'adi daemon start'.`,
        { cause: err },
      );
    case 'EACCES':
    case 'EPERM':
      return new AdiError(
        'PERMISSION_DENIED',
        `Permission denied connecting to ${endpoint.display}: the daemon belongs to another user. Run adi as that user or set ADI_DAEMON_SOCKET.`,
        { cause: err },
      );
    default:
      return new AdiError('DAEMON_NOT_RUNNING', `Cannot connect to the daemon at ${endpoint.display}: ${err.message}`, {
        cause: err,
      });
  }
}

export function listen(server: net.Server, endpoint: Endpoint): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // A supervisor may get bursts of CLI and plugin clients: a deep accept queue (the kernel caps it at
    // net.core.somaxconn); a client that still finds it full retries (see connect above).
    server.listen({ path: endpoint.address, backlog: 4096 });
  });
}
