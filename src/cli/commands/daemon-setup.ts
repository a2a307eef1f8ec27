import { AdiError } from '../../core/errors.js';
import { resolvePaths } from '../../core/paths.js';
import { sudoersFilePath } from '../../system/privilege.js';
import { applyPlan, describeAction, planRemove, planSetup, type SetupPlan } from '../../system/setup.js';
import { defineCommand } from '../command.js';

export const command = defineCommand({
  name: 'daemon setup',
  usage: 'sudo adi daemon setup [options]',
  args: [],
  options: {
    'dry-run': { type: 'boolean', help: 'Print what would be done and change nothing' },
    remove: { type: 'boolean', help: 'Undo exactly what setup created (users that existed before are kept)' },
    admin: {
      type: 'string',
      value: 'USER',
      help: "The daemon's user (default: $SUDO_USER, the one who ran sudo; root if none)",
    },
  },
  description: `Sets up privilege separation (run it as root, once):
  - creates the system users ADI_USER (default adi; plugins and Run) and ADI_ROOT_USER (default
    adi-root; SudoRun) with no home and no login shell, unless they exist already;
  - installs /etc/sudoers.d/adi-daemon-<ADI_USER> (mode 0440, checked with visudo -c first):
    ADI_ROOT_USER may run anything as root; the admin may act as the two users; ADI_USER gets nothing;
  - records what it created in /var/lib/adi-daemon/setup-<ADI_USER>.json.
Running it again changes nothing. A running daemon sees the change at 'adi daemon reload' (or a
restart); each service then runs as the plugin user from its next start.`,
  notes: `sudo resets the environment: pass other user names as \`sudo ADI_USER=x ADI_ROOT_USER=y adi daemon setup\`.`,
  async run({ values }, io) {
    const dryRun = values['dry-run'] === true;
    if (!dryRun && process.getuid?.() !== 0) {
      throw new AdiError(
        'PERMISSION_DENIED',
        'adi daemon setup creates users and a sudoers file: run it as root: sudo adi daemon setup',
      );
    }
    const paths = resolvePaths({ env: io.env });
    const sudoUser = io.env.SUDO_USER;
    const adminUser = values.admin ?? (sudoUser !== undefined && sudoUser !== '' ? sudoUser : 'root');
    const plan: SetupPlan =
      values.remove === true
        ? planRemove({ adiUser: paths.adiUser })
        : planSetup({ adiUser: paths.adiUser, adiRootUser: paths.adiRootUser, adminUser });

    const out = (line: string): void => {
      io.stdout.write(`${line}\n`);
    };
    if (dryRun) {
      out(plan.actions.length === 0 ? 'Nothing to do.' : `Would ${plan.mode === 'remove' ? 'remove' : 'set up'}:`);
      for (const a of plan.actions) out(`  - ${describeAction(a)}`);
      for (const n of plan.notes) out(`  (${n})`);
      return 0;
    }
    if (plan.actions.length === 0) {
      out(
        plan.mode === 'remove'
          ? 'Nothing to remove.'
          : `Privilege separation is already set up (${paths.adiUser}, ${paths.adiRootUser}, ${sudoersFilePath(paths.adiUser)}). Nothing changed.`,
      );
      for (const n of plan.notes) out(`  (${n})`);
      // Still verifies that the plugin user has no sudo rights.
      if (plan.mode === 'setup') applyPlan(plan);
      return 0;
    }
    applyPlan(plan, (line) => out(`done: ${line}`));
    out(
      plan.mode === 'remove'
        ? 'Privilege separation removed. Restart the daemon: it now runs everything as its own user.'
        : `Privilege separation is set up for admin ${adminUser}. Restart the daemon (adi daemon stop; adi daemon start) so that it runs Run and services as ${paths.adiUser}.`,
    );
    return 0;
  },
});
