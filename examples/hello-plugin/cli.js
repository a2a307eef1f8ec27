#!/usr/bin/env node
// hello-plugin: an example adi plugin. The daemon runs `node cli.js serve` as the plugin's service
// (package.json "adi.service": name "hello", command "serve"); `status` is a subcommand for a shell.
// Plain ESM JavaScript, so it needs no build. `adi-daemon` is the package of the adi that installed it
// (a peer dependency: `adi plugin install` links it), never a copy from the registry.

import { DaemonClient } from 'adi-daemon';

const text = (bytes) => Buffer.from(bytes).toString('utf8').trim();
const log = (line) => console.log(`[hello] ${line}`);

async function serve() {
  // Inside the service the environment says where the daemon is (ADI_DAEMON_SOCKET) and who this
  // plugin is (ADI_DAEMON_TOKEN, when the daemon gives plugins their own identity).
  const client = new DaemonClient({ clientName: 'hello-plugin' });

  // The daemon runs already (it started this service); from a shell this would start it.
  const pong = await client.ensureRunning();
  log(`connected to adi daemon ${pong.version} (pid ${pong.pid})`);

  const services = await client.listServices();
  log(`services: ${services.map((s) => `${s.name}=${s.state}`).join(', ')}`);

  // A regular command: runs as the plugin user (adi) when privilege separation is set up.
  const who = await client.run('/usr/bin/id', ['-un']);
  log(`run id -un: exit ${who.exit_code}, user ${text(who.stdout)}`);

  // A privileged command: allowed only because the manifest requested "/usr/bin/id -u" and the user
  // approved it at install. Anything else (another argument, another program) is refused with SUDO_DENIED.
  try {
    const root = await client.sudoRun('/usr/bin/id', ['-u'], 'hello-plugin: show which uid sudoRun runs as');
    log(`sudoRun id -u: exit ${root.exit_code}, uid ${text(root.stdout)}`);
  } catch (err) {
    log(`sudoRun id -u refused: ${err.code ?? ''} ${err.message}`);
  }

  log('ready');
  const heartbeat = setInterval(() => log('still here'), 60_000);
  process.once('SIGTERM', () => {
    log('stopping');
    clearInterval(heartbeat);
    client.close();
  });
}

async function status() {
  const client = new DaemonClient({ clientName: 'hello-plugin' });
  try {
    await client.ensureRunning();
    const hello = (await client.listServices()).find((s) => s.name === 'hello');
    console.log(
      hello === undefined
        ? 'hello: not known to the daemon'
        : `hello: ${hello.state}${hello.pid !== null ? ` (pid ${hello.pid})` : ''}`,
    );
  } finally {
    client.close();
  }
}

const [command = 'help'] = process.argv.slice(2);
const commands = { serve, status };
if (!(command in commands)) {
  console.log(
    'Usage: hello-plugin <serve | status>\n  serve   run the service (the daemon does this: adi daemon start hello)\n  status  show the state of the hello service',
  );
  process.exitCode = command === 'help' || command === '--help' ? 0 : 2;
} else {
  commands[command]().catch((err) => {
    console.error(`[hello] error: ${err.code ?? ''} ${err.message}`);
    process.exitCode = 1;
  });
}
