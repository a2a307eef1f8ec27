// ServiceLogs: the last N lines at once (Logs), or with follow a stream of LogLine frames that ends
// with StreamEnd when the client cancels or leaves. A follower that cannot keep up is dropped once the
// connection's unsent output passes its bound: it never grows the daemon (PM2 issues 5145, 6113).

import { AdiError } from '../../errors.js';
import type { Response } from '../../protocol/types.js';
import { requireOwnService } from '../access.js';
import type { Handler } from '../context.js';

export const handleServiceLogs: Handler<'ServiceLogs'> = async (req, ctx): Promise<Response> => {
  const { daemon } = ctx;
  // A service's output may hold the admin's secrets: a plugin reads only its own services' logs.
  requireOwnService(daemon, ctx.identity, req.name, 'read the logs of');
  const past = await daemon.services.tail(req.name, req.lines);
  if (!req.follow) return { type: 'Logs', lines: past };

  return new Promise<Response>((resolve) => {
    let unsubscribe: (() => void) | null = null;
    const end = (response: Response): void => {
      unsubscribe?.();
      unsubscribe = null;
      ctx.signal.removeEventListener('abort', onAbort);
      resolve(response);
    };
    const onAbort = (): void => end({ type: 'StreamEnd' });
    const slow = (): void =>
      end({ type: 'Error', code: 'SLOW_CONSUMER', message: 'The log follower fell too far behind and was dropped; follow again to resume.' });

    for (const line of past) {
      if (!ctx.send({ type: 'LogLine', line })) {
        slow();
        return;
      }
    }
    if (ctx.signal.aborted) {
      onAbort();
      return;
    }
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      unsubscribe = daemon.services.follow(req.name, (line) => {
        if (!ctx.send({ type: 'LogLine', line })) slow();
      });
    } catch (err) {
      end({ type: 'Error', code: err instanceof AdiError ? err.code : 'INTERNAL', message: err instanceof Error ? err.message : String(err) });
    }
  });
};
