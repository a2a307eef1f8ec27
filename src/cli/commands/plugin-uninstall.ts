import { checkName, resolvePaths } from '../../core/paths.js';
import { installedService, uninstallPlugin } from '../../plugins/install.js';
import { defineCommand } from '../command.js';
import { cliClient } from '../daemon-client.js';

export const command = defineCommand({
  name: 'plugin uninstall',
  args: [{ name: 'NAME' }],
  options: {},
  description: `Stops the plugin's service (when the daemon runs), removes the plugin's folder and its approval of
privileged commands, and tells the daemon, which forgets the service.`,
  async run({ positionals }, io) {
    const name = checkName('plugin', positionals[0]);
    const paths = resolvePaths({ env: io.env });
    const service = installedService(paths, name);
    const client = cliClient(io);
    try {
      const running = await client.isRunning();
      if (running && service !== null) {
        const info = (await client.listServices()).find((s) => s.name === service && s.source === 'plugin');
        if (info !== undefined && info.state !== 'stopped' && info.state !== 'failed') {
          // Before its files go: a service must not run on from a deleted folder.
          await client.stopService(service);
          io.stdout.write(`Stopped its service "${service}".\n`);
        }
      }
      const result = uninstallPlugin(paths, name);
      io.stdout.write(`Removed ${name}${result.removedApproval ? ' and its approval of root access' : ''}.\n`);
      if (running) {
        await client.reload().catch((err: unknown) => {
          io.stdout.write(
            `warning: could not tell the daemon (${err instanceof Error ? err.message : String(err)}); run 'adi daemon reload'.\n`,
          );
        });
      }
      return 0;
    } finally {
      client.close();
    }
  },
});
