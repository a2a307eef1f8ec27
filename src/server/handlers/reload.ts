import { wireText, type Handler } from '../context.js';

export const handleReload: Handler<'Reload'> = async (_req, { daemon }) => {
  const report = await daemon.reload();
  daemon.log.info(
    `reload: added [${report.added.join(', ')}], changed [${report.changed.join(', ')}], removed [${report.removed.join(', ')}], kept [${report.kept.join(', ')}], unchanged ${report.unchanged.length}`,
  );
  for (const error of report.errors) daemon.log.warn(`reload: ${error}`);
  const { added, removed, changed, kept } = report;
  const conflicts = report.conflicts.slice(0, 50).map(wireText);
  return {
    type: 'Ok',
    reload: {
      added,
      removed,
      changed,
      kept,
      unchanged: report.unchanged.length,
      errors: report.errors.slice(0, 50).map(wireText),
      ...(conflicts.length > 0 ? { conflicts } : {}),
    },
  };
};
