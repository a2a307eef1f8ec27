// `adi completion bash|zsh|fish`: each script is run by its real shell where installed, and calls the
// real `adi __complete` (an `adi` on PATH that runs this checkout). bash: the completion function is
// called as bash would, with COMP_WORDS / COMP_CWORD set. fish: `complete -C` asks fish itself. zsh:
// completion needs an interactive line editor, so the script's syntax is checked with `zsh -n` and its
// function run with zsh's completion builtins replaced by printers.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DaemonClient } from '../../src/client/client.js';
import { ADI, adi, daemonPids, home } from '../helpers/env.js';
import { startDaemon } from '../helpers/daemon.js';
import { have, shq } from './helpers.js';

/** Services of these names (sleeping), started over the socket: set-up for completing their names. */
async function startServices(env: NodeJS.ProcessEnv, names: string[]): Promise<void> {
  const client = new DaemonClient({ env });
  try {
    for (const name of names) await client.startService(name, { command: '/bin/sleep', args: ['1000'] });
  } finally {
    client.close();
  }
}

/** A PATH directory with an `adi` that runs this checkout, as the scripts call `adi` to list services. */
function adiOnPath(dir: string): string {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'adi'), `#!/bin/sh\nexec ${shq(process.execPath)} ${shq(ADI)} "$@"\n`, {
    mode: 0o755,
  });
  return bin;
}

async function script(shell: string, env: NodeJS.ProcessEnv): Promise<string> {
  const r = await adi(['completion', shell], env);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

function bashComplete(file: string, words: string[], env: NodeJS.ProcessEnv): string[] {
  const cword = words.length - 1;
  const code = `source ${shq(file)}; COMP_WORDS=(${words.map(shq).join(' ')}); COMP_CWORD=${cword}; _adi; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', code], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '');
}

describe('adi completion', () => {
  test('__complete: commands, options, values and arguments come from the command specs', async () => {
    const h = home();
    const ask = async (...words: string[]): Promise<string[]> => {
      const r = await adi(['__complete', ...words], h.env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      return r.stdout.split('\n').filter((l) => l !== '');
    };
    assert.deepEqual(await ask('daemon', 'st'), [
      'words',
      'start\tStart the daemon in the background, or start a service: start NAME [-- COMMAND ARGS...]',
      'stop\tStop the daemon and all its services, or one service: stop NAME [--force]',
      'status\tShow whether the daemon runs: pid, version, uptime, socket (exit 3 when not)',
    ]);
    // Options before or after arguments; a valued option's value is not an argument.
    assert.deepEqual(
      (await ask('daemon', 'logs', 'web', '-n', '5', '--f')).map((l) => l.split('\t')[0]),
      ['words', '--follow'],
    );
    assert.deepEqual((await ask('daemon', 'logs', '-')).map((l) => l.split('\t')[0]).sort(), [
      '--all',
      '--follow',
      '--help',
      '--lines',
      '--raw',
      '--since',
      '--stderr',
      '-a',
      '-f',
      '-n',
      'words',
    ]);
    assert.deepEqual(await ask('daemon', 'logs', '--since', ''), ['words']);
    assert.deepEqual(await ask('daemon', 'start', '--cwd', ''), ['dirs']);
    assert.deepEqual(await ask('daemon', 'start', 'web', '--', ''), ['files']);
    assert.deepEqual(await ask('plugin', 'install', ''), ['files']);
    // Hidden options stay hidden; a command with no arguments completes none.
    assert.deepEqual(
      (await ask('daemon', 'run', '--')).map((l) => l.split('\t')[0]),
      ['words', '--help'],
    );
    assert.deepEqual(await ask('daemon', 'status', ''), ['words']);
    assert.deepEqual(await ask('nope', ''), ['words']);
    // No daemon: no service names, and none is started by completing.
    assert.deepEqual(await ask('daemon', 'stop', ''), ['words']);
    assert.deepEqual(daemonPids(h.home), []);
  });

  test('bash: `adi daemon st<TAB>` gives start, status, stop; options and service names complete', async () => {
    const h = home();
    const file = path.join(h.home, 'adi.bash');
    fs.writeFileSync(file, await script('bash', h.env));
    const env = { ...h.env, PATH: `${adiOnPath(h.home)}:${h.env['PATH'] ?? ''}` };

    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'st'], env).sort(), ['start', 'status', 'stop']);
    assert.deepEqual(bashComplete(file, ['adi', 'da'], env), ['daemon']);
    assert.deepEqual(bashComplete(file, ['adi', 'completion', ''], env), ['bash', 'zsh', 'fish']);
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'logs', '--s'], env).sort(), ['--since', '--stderr']);
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'install', '--'], env).sort(), [
      '--help',
      '--now',
      '--root',
      '--system',
      '--user',
    ]);

    // No daemon: no names, and none is started by completing.
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'logs', ''], env), []);
    assert.deepEqual(daemonPids(h.home), []);

    // Started first on its own: a command that auto-starts the daemon can race its token file.
    await startDaemon(h.env);
    await startServices(h.env, ['web', 'worker']);
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'logs', 'w'], env), ['web', 'worker']);
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'stop', 'wo'], env), ['worker']);
    // stop takes one name; -n takes a number, not a name.
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'stop', 'web', ''], env), []);
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'logs', '-n', ''], env), []);
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'logs', '-n', '5', 'we'], env), ['web']);
    // A name already given is not offered again.
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'logs', 'web', ''], env), ['worker']);
    // Options after the argument, and after `--` the shell's own file completion.
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'stop', 'web', '--f'], env), ['--force']);
    assert.deepEqual(bashComplete(file, ['adi', 'daemon', 'start', 'x', '--', ''], env), []);
    // What the scripts of earlier versions call.
    const listed = await adi(['completion', '--list-services'], h.env);
    assert.equal(listed.stdout, 'web\nworker\n');
  });

  test('adi completion names a shell; --list-services prints nothing and starts nothing when no daemon runs', async () => {
    const h = home();
    const r = await adi(['completion', '--list-services'], h.env);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '');
    assert.deepEqual(daemonPids(h.home), []);
    const bad = await adi(['completion', 'tcsh'], h.env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bash, zsh or fish/);
  });

  test('zsh: valid syntax, and the function offers the right words', async (t) => {
    const h = home();
    const text = await script('zsh', h.env);
    assert.match(text, /^#compdef adi$/m);
    if (!have('zsh')) {
      t.diagnostic('zsh is not installed: the script was checked for its structure only');
      assert.match(text, /_adi\(\) \{[\s\S]*__complete[\s\S]*compdef _adi adi/);
      return;
    }
    const file = path.join(h.home, '_adi');
    fs.writeFileSync(file, text);
    const syntax = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
    // The completion system's functions, replaced by printers of what they were given.
    const stubs = [
      'compdef() { :; }',
      '_describe() { local name=${@[-1]}; print -l -- ${${(P)name}%%:*}; }',
      'compadd() { local -a w; while (( $# )); do case $1 in -a) shift; w+=(${(P)1}); shift;; --) shift; w+=("$@"); break;; -*) shift;; *) w+=("$1"); shift;; esac; done; print -l -- $w; }',
      '_files() { print -- FILES; }',
    ].join('\n');
    const env = { ...h.env, PATH: `${adiOnPath(h.home)}:${h.env['PATH'] ?? ''}` };
    const run = (words: string[]): string[] => {
      const code = `${stubs}\nsource ${shq(file)}\nwords=(${words.map(shq).join(' ')}); CURRENT=${words.length}\n_adi`;
      const r = spawnSync('zsh', ['-f', '-c', code], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n').filter((l) => l !== '');
    };
    assert.ok(['start', 'status', 'stop'].every((w) => run(['adi', 'daemon', 'st']).includes(w)));
    assert.deepEqual(run(['adi', 'completion', '']), ['bash', 'zsh', 'fish']);
    assert.ok(run(['adi', 'daemon', 'logs', '--']).includes('--since'));
    assert.deepEqual(run(['adi', 'daemon', 'install', '--root', '']), ['FILES']);
  });

  test('fish: valid syntax, and fish completes the right words', async (t) => {
    const h = home();
    const text = await script('fish', h.env);
    if (!have('fish')) {
      t.diagnostic('fish is not installed: the script was checked for its structure only');
      assert.match(text, /^complete -c adi -f -a '\(__adi_complete\)'$/m);
      return;
    }
    const file = path.join(h.home, 'adi.fish');
    fs.writeFileSync(file, text);
    const syntax = spawnSync('fish', ['-n', file], { encoding: 'utf8' });
    assert.equal(syntax.status, 0, syntax.stderr);
    const env = { ...h.env, PATH: `${adiOnPath(h.home)}:${h.env['PATH'] ?? ''}` };
    const complete = (line: string): string[] => {
      const r = spawnSync('fish', ['--no-config', '-c', `source ${shq(file)}; complete -C ${shq(line)}`], {
        env,
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      return r.stdout
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t')[0] as string);
    };
    assert.deepEqual(complete('adi daemon st'), ['start', 'status', 'stop']);
    assert.deepEqual(complete('adi daemon logs --s'), ['--since', '--stderr']);
    assert.deepEqual(complete('adi daemon logs '), []);
    await startDaemon(h.env);
    await startServices(h.env, ['web']);
    assert.deepEqual(complete('adi daemon logs '), ['web']);
  });
});
