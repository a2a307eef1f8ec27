import { PROTOCOL_VERSION, type Pong } from '../../protocol/types.js';
import { reports, type Handler } from '../context.js';

export const handlePing: Handler<'Ping'> = (_req, { daemon }): Pong => ({
  type: 'Pong',
  uptime_secs: Math.floor((Date.now() - daemon.startedAt) / 1000),
  version: daemon.version,
  pid: process.pid,
  protocol: PROTOCOL_VERSION,
  separation: daemon.separation(),
  ...reports(daemon),
});
