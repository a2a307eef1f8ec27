// ServiceLogs: a stream of LogBatch frames (the last N lines, or the lines after a cursor), then, with
// follow, each new batch of lines as the service writes them; it ends with StreamEnd carrying the
// cursor to resume from: at the end of a tail, or when the client cancels (whenever the Cancel comes)
// or leaves. Frames are produced only as fast as the client reads them (ctx.streamRoom): a slow or
// paused follower holds a bounded share of memory and never slows the service or other clients.

import type { StreamEnd } from '../../protocol/types.js';
import { LogReader } from '../../logs/reader.js';
import { requireOwnService } from '../access.js';
import type { Handler } from '../context.js';

export const handleServiceLogs: Handler<'ServiceLogs'> = async (req, ctx): Promise<StreamEnd> => {
  const { daemon } = ctx;
  // A service's output may hold the admin's secrets: a plugin reads only its own services' logs.
  requireOwnService(daemon, ctx.identity, req.name, 'read the logs of');

  const log = await daemon.services.logOf(req.name);
  const bounded = !req.follow;
  const reader =
    req.cursor != null ? LogReader.at(log, req.cursor, { bounded }) : await LogReader.tail(log, req.lines, { bounded });
  const signal = ctx.signal;
  try {
    for (;;) {
      const room = await ctx.streamRoom();
      // A retired log: the name passed to another owner, whose lines this reader must never reach.
      if (room === 0 || signal.aborted || log.retired) break;
      const batch = reader.next(room);
      if (batch !== null) {
        ctx.send({ type: 'LogBatch', data: batch.data, runs: batch.runs, cursor: batch.cursor });
        continue;
      }
      if (bounded) break;
      // Caught up: wait for the service's next output (or the end of the request).
      await new Promise<void>((resolve) => {
        const stop = log.onAppend(done);
        signal.addEventListener('abort', done, { once: true });
        function done(): void {
          stop();
          signal.removeEventListener('abort', done);
          resolve();
        }
      });
    }
    return { type: 'StreamEnd', cursor: reader.cursor };
  } finally {
    reader.close();
  }
};
