import { resolvePaths } from '../../core/paths.js';
import { installPlugin, type InstallResult } from '../../plugins/install.js';
import { PROMPT_QUESTION, isYes } from '../../plugins/prompt.js';
import { defineCommand, type CliIO } from '../command.js';
import { cliClient } from '../daemon-client.js';

/**
 * One line from stdin, or null at end of input with nothing typed. A terminal waits for the user; a
 * pipe or file gives what it holds; a closed stdin gives null at once.
 */
export function readAnswer(stdin: CliIO['stdin']): Promise<string | null> {
  return new Promise((resolve) => {
    let buffer = '';
    const finish = (value: string | null): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onEnd);
      stdin.pause();
      resolve(value);
    };
    const onData = (chunk: string | Buffer): void => {
      buffer += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      const nl = buffer.indexOf('\n');
      if (nl >= 0) finish(buffer.slice(0, nl).replace(/\r$/, ''));
    };
    const onEnd = (): void => finish(buffer === '' ? null : buffer);
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.once('error', onEnd);
    stdin.resume();
  });
}

/**
 * The services a running daemon defines that no file shows (ad-hoc ones), with their owner; empty
 * when no daemon runs. Plugins and services.toml are read from their files by the install itself.
 */
async function daemonOwners(client: ReturnType<typeof cliClient>): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  try {
    if (!(await client.isRunning())) return owners;
    for (const s of await client.listServices()) {
      if (s.source === 'adhoc') owners.set(s.name, 'an ad-hoc service of the running daemon');
    }
  } catch {
    // no daemon to ask: the files decide
  }
  return owners;
}

export const command = defineCommand({
  name: 'plugin install',
  args: [{ name: '<folder | file.tgz | npm package spec>', complete: 'file' }],
  options: {
    yes: {
      type: 'boolean',
      short: 'y',
      help: 'Approve the requested privileged commands without asking (for scripts)',
    },
    'allow-non-registry-deps': {
      type: 'boolean',
      help: 'Allow git, file, link, URL and alias dependency specs (still fetched unprivileged, without scripts)',
    },
  },
  description: `Installs a plugin (a folder or npm package whose package.json has an "adi" key; see docs/plugins.md)
into the plugins folder, and tells a running daemon, which then lists the plugin's service as stopped
until it is started (adi daemon start NAME).

Nothing the package chose runs or configures anything: a folder is copied (without node_modules and
.git), a .tgz is unpacked and a registry package fetched with \`npm pack\` by an unprivileged account
(as root: adi-install, created on first use; see docs/plugins.md), with npm configuration adi writes.
Links, special files, set-uid files and oversized or too deep trees are refused. Dependencies must be
registry versions or ranges; they are fetched after any question, by the same account, without scripts.
The plugin gets this adi's own adi-daemon package, so \`import { DaemonClient } from 'adi-daemon'\`
works in it. A service name another plugin or services.toml already defines is refused.

If the plugin requests root access (privileged_commands), each pattern is shown with what it grants,
and you are asked "Allow? [y/N]". The default is No. Without a terminal, the answer is read from stdin;
no answer refuses. An update asks again whenever its version, its patterns or its files differ from
those approved, and says which; only an identical package does not ask. If you refuse an update, the
installed version and its approval stay.`,
  async run({ values, positionals }, io) {
    const paths = resolvePaths({ env: io.env });
    const say = (line: string): void => {
      io.stdout.write(`${line}\n`);
    };
    const client = cliClient(io);
    let result: InstallResult;
    try {
      result = await installPlugin({
        paths,
        source: positionals[0] as string,
        yes: values.yes === true,
        allowNonRegistryDeps: values['allow-non-registry-deps'] === true,
        otherOwners: await daemonOwners(client),
        env: io.env,
        say,
        ask: async (prompt) => {
          io.stdout.write(`${prompt}${PROMPT_QUESTION}`);
          const answer = await readAnswer(io.stdin);
          if (answer === null) {
            io.stdout.write('\n');
            say(
              io.stdin.isTTY === true
                ? 'No answer.'
                : 'No answer on stdin (it is not a terminal); pass --yes to approve from a script.',
            );
            return false;
          }
          // A terminal echoed what was typed; from a pipe, show the answer so the transcript reads right.
          if (io.stdin.isTTY !== true) io.stdout.write(`${answer}\n`);
          return isYes(answer);
        },
      });
    } catch (err) {
      client.close();
      throw err;
    }
    say(`Installed ${result.name} ${result.version} in ${result.dir}`);
    if (result.patterns.length > 0)
      say(
        `Root access approved for ${result.patterns.length} command pattern${result.patterns.length === 1 ? '' : 's'}.`,
      );

    try {
      return await tellDaemon();
    } catch (err) {
      // The plugin is installed; only the daemon did not hear of it.
      say(
        `warning: could not tell the daemon (${err instanceof Error ? err.message : String(err)}); run 'adi daemon reload'.`,
      );
      return 0;
    } finally {
      client.close();
    }

    async function tellDaemon(): Promise<number> {
      if (!(await client.isRunning())) {
        if (result.service !== null)
          say(`Its service "${result.service}" will be listed when the daemon starts (adi daemon start).`);
        return 0;
      }
      await client.reload();
      if (result.service === null) return 0;
      const info = (await client.listServices()).find((s) => s.name === result.service);
      if (info === undefined) {
        say(`warning: the daemon does not list the service "${result.service}"; see its log (${paths.logFile}).`);
      } else if (result.previousVersion !== null && (info.state === 'running' || info.state === 'starting')) {
        await client.restartService(result.service);
        say(`Restarted its service "${result.service}" to run the new version.`);
      } else {
        say(`Its service "${result.service}" is ${info.state}; start it with: adi daemon start ${result.service}`);
      }
      return 0;
    }
  },
});
