import type { Handler } from '../context.js';

export const handleReload: Handler<'Reload'> = async (_req, { daemon }) => {
  const report = await daemon.reload();
  daemon.log.info(
    `reload: added [${report.added.join(', ')}], changed [${report.changed.join(', ')}], removed [${report.removed.join(', ')}], unchanged ${report.unchanged.length}`,
  );
  for (const error of report.errors) daemon.log.warn(`reload: ${error}`);
  return { type: 'Ok' };
};
