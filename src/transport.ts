// Local-socket transport: listen and connect on an Endpoint (Unix socket file, Linux abstract name,
// Windows named pipe). node:net speaks all three; this module only adds timeouts and clear errors.

import net from 'node:net';
import { AdiError } from './errors.js';
import type { Endpoint } from './paths.js';

export function connect(endpoint: Endpoint, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: endpoint.address });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new AdiError('TIMEOUT', `Connecting to the daemon at ${endpoint.display} took longer than ${timeoutMs} ms.`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(connectError(endpoint, err));
    });
  });
}

export function connectError(endpoint: Endpoint, err: NodeJS.ErrnoException): AdiError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new AdiError('DAEMON_NOT_RUNNING', `The daemon is not running (nothing answers at ${endpoint.display}). Start it with 'adi daemon start'.`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new AdiError('PERMISSION_DENIED', `Permission denied connecting to ${endpoint.display}: the daemon belongs to another user. Run adi as that user or set ADI_DAEMON_SOCKET.`, { cause: err });
    default:
      return new AdiError('DAEMON_NOT_RUNNING', `Cannot connect to the daemon at ${endpoint.display}: ${err.message}`, { cause: err });
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
    // A small backlog is the kernel's default; a supervisor may get bursts of CLI and plugin clients.
    server.listen({ path: endpoint.address, backlog: 1024 });
  });
}
