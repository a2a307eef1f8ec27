// `adi daemon uninstall [--user | --system] [--now]`: remove what `adi daemon install` wrote.

import { AdiError } from '../../core/errors.js';
import { removeBootFiles } from '../boot.js';
import { defineCommand } from '../command.js';
import { withProgress } from '../progress.js';
import { planFor, runManagerCommand } from './daemon-install.js';

export const command = defineCommand({
  name: 'daemon uninstall',
  args: [],
  options: {
    user: { type: 'boolean', help: 'The unit for you (default)' },
    system: { type: 'boolean', help: 'The unit for the whole machine (run with sudo)' },
    now: {
      type: 'boolean',
      help: 'Have the service manager stop the daemon first (systemctl disable --now / launchctl bootout)',
    },
    root: { type: 'string', value: 'DIR', complete: 'dir', help: 'With --system: the files under DIR instead of /' },
  },
  description: `Removes the systemd unit (and its enable link) or launchd property list that 'adi daemon install'
wrote. A daemon that runs keeps running until 'adi daemon stop'; with --now the service manager stops
it first (systemctl disable --now / launchctl bootout), which stops its services too.`,
  async run({ values }, io) {
    const plan = planFor('daemon uninstall', values, io);
    if (values.now === true) {
      for (const step of plan.disable) {
        const result = await withProgress(io, `running ${step.join(' ')}`, () => runManagerCommand(step, io.env));
        // Not fatal: the point is to remove the files, and a unit that was never enabled fails here.
        if (!result.ok) io.stderr.write(`adi: note: '${step.join(' ')}' failed: ${result.output}\n`);
      }
    }
    let removed: string[];
    try {
      removed = removeBootFiles(plan);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') {
        throw new AdiError(
          'PERMISSION_DENIED',
          `Cannot remove ${plan.file}: permission denied. ${plan.scope === 'system' ? "Run 'sudo adi daemon uninstall --system'" : 'Check the ownership of that directory'}.`,
        );
      }
      throw err;
    }
    if (removed.length === 0) {
      io.stdout.write(`Not installed (no ${plan.file}).\n`);
      return 0;
    }
    for (const file of removed) io.stdout.write(`Removed ${file}\n`);
    if (plan.kind === 'systemd') {
      const ctl = plan.scope === 'user' ? 'systemctl --user' : 'systemctl';
      if (values.now === true) await runManagerCommand([...ctl.split(' '), 'daemon-reload'], io.env);
      else
        io.stdout.write(
          `'${ctl} daemon-reload' makes systemd forget it; a daemon it started keeps running until 'adi daemon stop'.\n`,
        );
    } else if (values.now !== true) {
      io.stdout.write(
        `'${plan.disableShown}' unloads it now; a daemon it started keeps running until 'adi daemon stop'.\n`,
      );
    }
    return 0;
  },
});
