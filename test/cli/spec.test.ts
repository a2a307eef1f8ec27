// The declarative CLI: each command's spec drives parsing, --help, completion and the bundles. Parsing
// is checked in-process; help through the real `adi`, once per command, so each per-command bundle
// (dist/cli/<a>-<b>.cjs, found by bin/adi.js) is shown to hold the module the table names.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AdiError } from '../../src/core/errors.js';
import { helpText, parseCommand, type CommandSpec } from '../../src/cli/command.js';
import { COMMANDS, TOP } from '../../src/cli/table.js';
import type { ServiceInfo } from '../../src/protocol/types.js';
import { ROOT, adi, tempHome, type TempHome } from '../helpers/env.js';

const START: CommandSpec = {
  args: [{ name: 'NAME', optional: true }],
  commandLine: 'COMMAND [ARGS...]',
  options: {
    env: { type: 'string', multiple: true, value: 'K=V', help: 'env' },
    force: { type: 'boolean', short: 'f', help: 'force' },
  },
  description: '',
};

function badArgument(fn: () => unknown, pattern: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) => err instanceof AdiError && err.code === 'BAD_ARGUMENT' && pattern.test(err.message),
  );
}

describe('parsing from the spec', () => {
  test('options go before or after the arguments; what follows -- is kept verbatim', () => {
    const a = parseCommand('x', START, [
      '--env',
      'A=1',
      'web',
      '-f',
      '--env=B=2',
      '--',
      'cmd',
      '--env',
      '-f',
      '--',
      '--help',
    ]);
    assert.deepEqual(a.positionals, ['web']);
    assert.deepEqual({ ...a.values }, { env: ['A=1', 'B=2'], force: true });
    assert.deepEqual(a.commandLine, ['cmd', '--env', '-f', '--', '--help']);
    const b = parseCommand('x', START, ['web']);
    assert.equal(b.commandLine, null, 'no -- at all is not an empty command line');
    assert.deepEqual(parseCommand('x', START, ['web', '--']).commandLine, []);
  });

  test('a command without a command line takes what follows -- as arguments', () => {
    const spec: CommandSpec = {
      args: [{ name: 'NAME', variadic: true }],
      options: { all: { type: 'boolean', help: 'all' } },
      description: '',
    };
    const p = parseCommand('x', spec, ['a', '--all', '--', '--b']);
    assert.deepEqual(p.positionals, ['a', '--b']);
    assert.equal(p.values.all, true);
  });

  test('wrong words are BAD_ARGUMENT naming the word and pointing at --help', () => {
    badArgument(() => parseCommand('daemon x', START, ['--bogus']), /--bogus.*adi daemon x --help/);
    badArgument(() => parseCommand('daemon x', START, ['a', 'b']), /Unexpected argument 'b'.*takes NAME/);
    badArgument(
      () => parseCommand('daemon x', { ...START, args: [] }, ['a']),
      /Unexpected argument 'a'.*takes no arguments/,
    );
    badArgument(() => parseCommand('daemon x', { ...START, args: [{ name: 'NAME' }] }, ['-f']), /Missing NAME/);
    badArgument(() => parseCommand('daemon x', START, ['--env']), /--env/);
    const shells: CommandSpec = {
      args: [{ name: 'SHELL', choices: ['bash', 'zsh', 'fish'] }],
      options: {},
      description: '',
    };
    badArgument(() => parseCommand('completion', shells, ['tcsh']), /SHELL is one of bash, zsh or fish, not 'tcsh'/);
  });

  test('every spec is well formed', async () => {
    for (const [name, entry] of Object.entries({ ...COMMANDS, ...TOP })) {
      const { command } = await entry.load();
      const { spec } = command;
      assert.equal(command.name, name, 'the table loads the module of the command it names');
      spec.args.forEach((a, i) =>
        assert.ok(a.variadic !== true || i === spec.args.length - 1, `${name}: only the last argument may repeat`),
      );
      const shorts = Object.values(spec.options).flatMap((o) => (o.short === undefined ? [] : [o.short]));
      assert.equal(new Set(shorts).size, shorts.length, `${name}: short options are distinct`);
      assert.ok(!shorts.includes('h') && !Object.hasOwn(spec.options, 'help'), `${name}: -h and --help are adi's`);
      for (const [key, o] of Object.entries(spec.options)) {
        assert.match(key, /^[a-z][a-z-]*$/, `${name}: --${key}`);
        assert.ok(o.help.length > 0, `${name}: --${key} has help`);
        assert.ok(o.type === 'boolean' || o.value !== undefined, `${name}: --${key} names its value`);
      }
    }
  });
});

describe('help and bundles from the spec', () => {
  test('`adi CMD --help` prints the help made from its spec, through each per-command bundle', async () => {
    const h = tempHome();
    try {
      for (const [name, entry] of Object.entries({ ...COMMANDS, ...TOP })) {
        if (name.includes(' '))
          assert.ok(
            fs.existsSync(path.join(ROOT, 'dist', 'cli', `${name.replace(' ', '-')}.cjs`)),
            `bundle of ${name}`,
          );
        const { spec } = (await entry.load()).command;
        const r = await adi([...name.split(' '), '--help'], h.env);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, helpText(name, spec), name);
        for (const [key, o] of Object.entries(spec.options)) {
          if (o.hidden !== true) assert.ok(r.stdout.includes(`--${key}`), `${name} --help shows --${key}`);
        }
      }
    } finally {
      await h.cleanup();
    }
  });
});

describe('daemon start / stop: NAME and options in any order', () => {
  let h: TempHome;
  before(async () => {
    h = tempHome();
    const r = await adi(['daemon', 'start'], h.env);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await h.cleanup();
  });

  test('options before NAME start an ad-hoc service; --force after or before NAME stops it', async () => {
    const start = await adi(
      [
        'daemon',
        'start',
        '--env',
        'GREETING=hi',
        '--no-restart',
        'greeter',
        '--max-restarts',
        '2',
        '--',
        '/bin/sh',
        '-c',
        'echo "$GREETING"; exec sleep 1000',
      ],
      h.env,
    );
    assert.equal(start.code, 0, start.stderr);
    const list = JSON.parse((await adi(['daemon', 'services', '--json'], h.env)).stdout) as ServiceInfo[];
    const greeter = list.find((s) => s.name === 'greeter');
    assert.equal(greeter?.state, 'running');
    const stop = await adi(['daemon', 'stop', '--force', 'greeter'], h.env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /stopped greeter/);
    const again = await adi(['daemon', 'start', 'greeter', '--help'], h.env);
    assert.match(again.stdout, /^Usage: adi daemon start/);
  });

  test('an ad-hoc option out of range is refused naming the option, before anything is sent', async () => {
    const r = await adi(
      [
        'daemon',
        'start',
        'bounded',
        '--max-restarts',
        '5000',
        '--stop-timeout',
        '99999',
        '--cwd',
        'rel',
        '--',
        '/bin/true',
      ],
      h.env,
    );
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      'adi: --cwd: must be an absolute path, got a string "rel"; --max-restarts: expected an integer from 0 to 1000, got the number 5000; --stop-timeout: expected a number from 0 to 3600, got the number 99999',
    );
    const list = JSON.parse((await adi(['daemon', 'services', '--json'], h.env)).stdout) as ServiceInfo[];
    assert.ok(!list.some((s) => s.name === 'bounded'), 'nothing was started');
  });

  test('options that need NAME without one are refused, and the daemon is left alone', async () => {
    const start = await adi(['daemon', 'start', '--env', 'A=1'], h.env);
    assert.equal(start.code, 2);
    assert.match(start.stderr, /needs a name/);
    const stop = await adi(['daemon', 'stop', '--force'], h.env);
    assert.equal(stop.code, 2);
    assert.match(stop.stderr, /--force stops one service/);
    assert.equal((await adi(['daemon', 'status'], h.env)).code, 0, 'the daemon still runs');
  });
});
