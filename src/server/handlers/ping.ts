import { PROTOCOL_VERSION, type Pong } from '../../protocol/types.js';
import { reports, type Handler } from '../context.js';

export const handlePing: Handler<'Ping'> = (_req, { daemon }): Pong => {
  const pong: Pong = {
    type: 'Pong',
    uptime_secs: Math.floor((Date.now() - daemon.startedAt) / 1000),
    version: daemon.version,
    pid: process.pid,
    protocol: PROTOCOL_VERSION,
    separation: daemon.separation(),
    ...reports(daemon),
  };
  // Sent only when there is something to say: a Ping stays one small frame.
  const pluginSocket = daemon.pluginSocket();
  if (pluginSocket !== null) pong.plugin_socket = pluginSocket;
  return pong;
};
