// The approval prompt on a real terminal: `adi plugin install` runs in a tmux pane, and what the
// screen shows (capture-pane) between the header and the question is exactly the patterns, each on
// its own line, nothing erased or reordered. Answering "n" on the terminal installs nothing.
// Needs tmux (.ci/run installs it); skipped with a message without it.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { PROMPT_HEADER } from '../../src/plugins/prompt.js';
import { ADI, waitFor, type TempHome } from '../helpers/env.js';
import { pluginHome, writePlugin } from './util.js';

const hasTmux = spawnSync('tmux', ['-V'], { encoding: 'utf8' }).status === 0;
const skip = hasTmux ? false : 'tmux is not installed (.ci/run installs it)';
if (skip !== false) console.log(`# prompt-tty test skipped: ${skip}`);

const SOCKET = `adi-test-${process.pid}`;
let h: TempHome | null = null;

function tmux(args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', env: env ?? process.env, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The visible screen, wrapped lines joined. */
function screen(): string {
  return tmux(['capture-pane', '-p', '-J', '-t', 'prompt']);
}

void afterEach(async () => {
  spawnSync('tmux', ['-L', SOCKET, 'kill-server'], { encoding: 'utf8' });
  await h?.cleanup();
  h = null;
});

void describe('the approval prompt on a terminal', { skip }, () => {
  void it('the screen shows exactly the patterns between the header and the question', async () => {
    h = pluginHome('adi-itest-tty');
    const t = h;
    const patterns = ['/usr/bin/id -u', '/usr/bin/printf %s café-ü', '/usr/bin/id -g *'];
    const src = writePlugin(path.join(t.home, 'src'), {
      name: 'ttyplug',
      service: { name: 'tty-svc', command: 'serve', privileged_commands: patterns },
    });
    const script = path.join(t.home, 'run.sh');
    // The env tmux's server starts with is this one (a server of our own on its own socket); the pane
    // stays after adi exits (sleep) so its last screen can be read.
    fs.writeFileSync(
      script,
      `#!/bin/sh\n${JSON.stringify(process.execPath)} ${JSON.stringify(ADI)} plugin install ${JSON.stringify(src)}\necho "[exit $?]"\nexec sleep 600\n`,
      { mode: 0o755 },
    );
    const env = { ...t.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TERM: 'xterm-256color' };
    tmux(['-u', 'new-session', '-d', '-s', 'prompt', '-x', '200', '-y', '50', script], env);
    await waitFor(() => screen().includes('Allow? [y/N]'), 30_000, 'the question on the screen');

    const lines = screen()
      .split('\n')
      .map((l) => l.trimEnd());
    const from = lines.indexOf(PROMPT_HEADER);
    const to = lines.findIndex((l) => l.startsWith('Allow? [y/N]'));
    assert.ok(from >= 0 && to > from, lines.join('\n'));
    const shown = lines
      .slice(from + 1, to)
      .filter((l) => l.startsWith('  - '))
      .map((l) => l.slice(4));
    assert.deepEqual(shown, patterns);
    // The explanation lines are indented under their pattern and say nothing else is granted.
    assert.ok(
      lines.slice(from + 1, to).every((l) => l.startsWith('  - ') || l.startsWith('      ')),
      lines.slice(from, to + 1).join('\n'),
    );

    tmux(['send-keys', '-t', 'prompt', 'n', 'Enter']);
    await waitFor(
      () => screen().includes('Not installed: root access was not approved'),
      30_000,
      'the refusal on the screen',
    );
    assert.equal(fs.existsSync(path.join(t.paths.pluginsDir, 'ttyplug')), false);
  });

  void it('a pattern holding a C1 CSI or a bidi override never reaches the screen: refused naming the field', async () => {
    h = pluginHome('adi-itest-tty');
    const t = h;
    const src = writePlugin(path.join(t.home, 'src'), {
      name: 'ttyevil',
      service: {
        name: 'tty-evil',
        command: 'serve',
        privileged_commands: ['/usr/bin/id -u', '/usr/bin/id -g \u009b1A\u009b2K\u202e'],
      },
    });
    const script = path.join(t.home, 'run.sh');
    fs.writeFileSync(
      script,
      `#!/bin/sh\n${JSON.stringify(process.execPath)} ${JSON.stringify(ADI)} plugin install ${JSON.stringify(src)}\necho "[exit $?]"\nexec sleep 600\n`,
      { mode: 0o755 },
    );
    const env = { ...t.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TERM: 'xterm-256color' };
    tmux(['-u', 'new-session', '-d', '-s', 'prompt', '-x', '200', '-y', '50', script], env);
    await waitFor(() => /Invalid plugin manifest/.test(screen()), 30_000, 'the refusal on the screen');
    const text = screen();
    assert.match(text, /field "adi\.service\.privileged_commands\[1\]": it contains the C1 control character U\+009B/);
    assert.doesNotMatch(text, /Allow\?/);
    assert.equal(fs.existsSync(path.join(t.paths.pluginsDir, 'ttyevil')), false);
  });
});
