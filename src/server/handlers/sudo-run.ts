// SudoRun: the admin may run anything (root-equivalent after setup anyway); a
// plugin only what its own approved privileged_commands allow — never another plugin's. The executor
// applies the rules and audits every attempt; its refusal travels as an Error with code SUDO_DENIED.

import { AdiError } from '../../core/errors.js';
import { approvedPatterns } from '../../plugins/approvals.js';
import { approvedFilesProblem } from '../../plugins/digest.js';
import type { Handler } from '../context.js';

export const handleSudoRun: Handler<'SudoRun'> = async (req, ctx) => {
  const { daemon, identity } = ctx;
  const patterns =
    identity.kind === 'admin'
      ? ('any' as const)
      : identity.kind === 'plugin' && identity.plugin !== null
        ? approvedPatterns(daemon.paths, identity.plugin)
        : [];
  const plugin = identity.kind === 'plugin' ? identity.plugin : null;
  const result = await daemon.executor.sudoRun(identity, req, patterns, {
    signal: ctx.signal,
    holdOutput: (release) => ctx.afterSend(release),
    ...(plugin !== null
      ? { approvedFiles: (separated: boolean) => approvedFilesProblem(daemon.paths, plugin, separated) }
      : {}),
  });
  if (result.type === 'SudoDenied') throw new AdiError('SUDO_DENIED', result.reason, { data: result.data });
  return result;
};
