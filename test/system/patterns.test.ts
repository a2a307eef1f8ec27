import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AdiError } from '../../src/core/errors.js';
import {
  compilePattern,
  explainPattern,
  matchAny,
  matchArgv,
  matchToken,
  type CompiledPattern,
} from '../../src/system/patterns.js';
import { resolveCommand } from '../../src/system/resolve.js';

// Property tests use a fake resolver so that the command token needs no file on disk.
const fakeResolve = (cmd: string): string => (cmd.startsWith('/') ? cmd : `/fake/bin/${cmd}`);
const CMD = '/fake/bin/cmd';

function compiled(tokens: string[], rest = false): CompiledPattern {
  return compilePattern(['cmd', ...tokens, ...(rest ? ['*'] : [])].join(' '), fakeResolve);
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AdiError, `expected an AdiError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected an error');
}

// ------------------------------------------------------------------------------------------------
// Units

void test('compilePattern splits on runs of spaces and tabs and resolves the command', () => {
  const p = compilePattern('  echo \t hello\t\t*  ');
  assert.equal(p.command, resolveCommand('echo'));
  assert.deepEqual(p.args, ['hello']);
  assert.equal(p.rest, true);
  assert.equal(p.text, 'echo hello *');
});

void test('an absolute command in a pattern is canonicalised like a request (/bin/echo = /usr/bin/echo)', () => {
  const p = compilePattern('/bin/echo x');
  assert.equal(p.command, resolveCommand('/usr/bin/echo'));
  assert.ok(matchArgv(p, resolveCommand('/usr/bin/echo'), ['x']));
  assert.ok(matchArgv(p, resolveCommand('echo'), ['x']));
});

void test('compilePattern refuses empty, control characters, relative commands and grant-everything patterns', () => {
  for (const bad of ['', '   ', '\t', 'echo\nid', 'echo\rx', 'echo a\0', 'echo \x1b[1m']) {
    assert.equal(
      codeOf(() => compilePattern(bad)),
      'BAD_ARGUMENT',
      JSON.stringify(bad),
    );
  }
  for (const bad of ['./echo x', 'bin/echo x', '../bin/echo']) {
    assert.equal(
      codeOf(() => compilePattern(bad)),
      'BAD_ARGUMENT',
      bad,
    );
  }
  for (const bad of ['*', '* *', '**', '  *  ', '/usr/bin/* -x', 'ec*o hi']) {
    assert.equal(
      codeOf(() => compilePattern(bad)),
      'BAD_ARGUMENT',
      bad,
    );
  }
  assert.match(
    String(
      (() => {
        try {
          compilePattern('*');
        } catch (e) {
          return (e as Error).message;
        }
      })(),
    ),
    /every command/,
  );
  assert.equal(
    codeOf(() => compilePattern('no-such-command-adi-test x')),
    'COMMAND_NOT_FOUND',
  );
  assert.equal(
    codeOf(() => compilePattern('echo ' + 'x '.repeat(300))),
    'BAD_ARGUMENT',
  );
});

void test('literal tokens match exactly one argument each', () => {
  const p = compilePattern('a b', fakeResolve);
  assert.ok(matchArgv(p, '/fake/bin/a', ['b']));
  assert.ok(!matchArgv(p, '/fake/bin/a', ['b c']));
  assert.ok(!matchArgv(p, '/fake/bin/a', ['b', 'c']));
  assert.ok(!matchArgv(p, '/fake/bin/a', []));
  assert.ok(!matchArgv(p, '/fake/bin/a', ['b ']));
  assert.ok(!matchArgv(p, '/fake/bin/other', ['b']));
});

void test('a final * matches zero or more further arguments', () => {
  const p = compilePattern('iptables -t nat *', fakeResolve);
  const ipt = '/fake/bin/iptables';
  assert.ok(matchArgv(p, ipt, ['-t', 'nat']));
  assert.ok(matchArgv(p, ipt, ['-t', 'nat', '-L']));
  assert.ok(matchArgv(p, ipt, ['-t', 'nat', '--modprobe=/tmp/x'])); // the documented pitfall
  assert.ok(!matchArgv(p, ipt, ['-t', 'filter', '-L']));
  assert.ok(!matchArgv(p, ipt, ['-t']));
  assert.ok(!matchArgv(p, ipt, ['-t nat', '-L']));
});

void test('* inside a token matches within that one argument only', () => {
  const p = compilePattern('a *x', fakeResolve);
  assert.ok(matchArgv(p, '/fake/bin/a', ['x']));
  assert.ok(matchArgv(p, '/fake/bin/a', ['1x']));
  assert.ok(matchArgv(p, '/fake/bin/a', ['1 x'])); // one argument that contains a space
  assert.ok(!matchArgv(p, '/fake/bin/a', ['1', 'x'])); // cannot span two arguments
  assert.ok(!matchArgv(p, '/fake/bin/a', ['x1']));
  const q = compilePattern('a --out=*.log y', fakeResolve);
  assert.ok(matchArgv(q, '/fake/bin/a', ['--out=a.log', 'y']));
  assert.ok(!matchArgv(q, '/fake/bin/a', ['--out=a.log y']));
  assert.ok(!matchArgv(q, '/fake/bin/a', ['--out=a', '.log', 'y']));
  // A lone * that is not last is one argument of any content.
  const r = compilePattern('a * z', fakeResolve);
  assert.ok(matchArgv(r, '/fake/bin/a', ['anything at all', 'z']));
  assert.ok(matchArgv(r, '/fake/bin/a', ['', 'z']));
  assert.ok(!matchArgv(r, '/fake/bin/a', ['1', '2', 'z']));
});

void test('? [ ] \\ and quotes are ordinary characters', () => {
  const p = compilePattern('a b? [c] "d" \\e', fakeResolve);
  assert.ok(matchArgv(p, '/fake/bin/a', ['b?', '[c]', '"d"', '\\e']));
  assert.ok(!matchArgv(p, '/fake/bin/a', ['bx', 'c', 'd', 'e']));
  assert.equal(matchToken('x?', 'xy'), false);
  assert.equal(matchToken('[ab]', 'a'), false);
});

void test('matchToken handles many stars without blowing up', () => {
  const token = '*a'.repeat(40) + '*b';
  const arg = 'a'.repeat(10_000);
  const start = Date.now();
  assert.equal(matchToken(token, arg), false);
  assert.ok(Date.now() - start < 2000);
});

void test('matchAny says which pattern allowed it, or why nothing did', () => {
  const ps = [compilePattern('/usr/bin/id -u'), compilePattern('echo hello *')];
  const id = resolveCommand('id');
  const ok = matchAny(ps, id, ['-u']);
  assert.deepEqual(ok, {
    allowed: true,
    pattern: ps[0]?.text,
    reason: `allowed by the approved pattern "/usr/bin/id -u"`,
  });
  const extra = matchAny(ps, id, ['-u', '-n']);
  assert.equal(extra.allowed, false);
  assert.match(extra.reason, /match none of the approved patterns/);
  const other = matchAny(ps, resolveCommand('true'), []);
  assert.equal(other.allowed, false);
  assert.match(other.reason, /not among the approved/);
  assert.equal(matchAny([], id, []).allowed, false);
});

void test('explainPattern warns about a final * and about programs that run anything', () => {
  const lines = explainPattern(compilePattern('iptables -t nat *', fakeResolve));
  assert.match(lines.join('\n'), /ANY further arguments/);
  assert.match(lines.join('\n'), /--modprobe/);
  const sh = explainPattern(compilePattern('sh -c *', fakeResolve));
  assert.match(sh.join('\n'), /full root access/);
  assert.deepEqual(explainPattern(compilePattern('id -u', fakeResolve)).length, 1);
});

// ------------------------------------------------------------------------------------------------
// Properties: an argument's content can never widen a match.

const HOSTILE = [
  ' ',
  '\t',
  '\n',
  ';',
  '&&',
  '||',
  '|',
  '$(',
  ')',
  '`',
  '..',
  '/',
  '*',
  '?',
  '[',
  ']',
  '"',
  "'",
  '\\',
  '=',
  '-',
  '--',
  'a',
  'b',
  'x',
  'rm -rf /',
  '$(id)',
  '\n-u',
];
const hostileString = fc.array(fc.constantFrom(...HOSTILE), { maxLength: 6 }).map((parts) => parts.join(''));
const hostileArgs = fc.array(hostileString, { maxLength: 6 });
/** A pattern token: no whitespace or control characters (those separate tokens / are refused). */
const tokenChars = ['a', 'b', 'x', '-', '=', '/', '.', ';', '&', '$', '(', ')', '?', '[', '"', '\\'];
const literalToken = fc.array(fc.constantFrom(...tokenChars), { minLength: 1, maxLength: 5 }).map((c) => c.join(''));
const globToken = fc.array(fc.constantFrom(...tokenChars, '*'), { minLength: 1, maxLength: 6 }).map((c) => c.join(''));

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
/** Independent reference: one anchored regex per token, `*` = any characters within the argument. */
function reference(token: string, arg: string): boolean {
  return new RegExp('^' + token.split('*').map(escapeRe).join('[\\s\\S]*') + '$').test(arg);
}
/** An argument that a token matches: each `*` filled with hostile text. */
function fill(token: string, fillers: string[]): string {
  let i = 0;
  return token.replace(/\*/g, () => fillers[i++ % Math.max(fillers.length, 1)] ?? '');
}

const RUNS = { numRuns: 500 };

void test('property: matchToken agrees with an independent per-argument reference', () => {
  fc.assert(
    fc.property(globToken, hostileString, (token, arg) => matchToken(token, arg) === reference(token, arg)),
    RUNS,
  );
  fc.assert(
    fc.property(globToken, fc.array(hostileString, { maxLength: 4 }), (token, fillers) => {
      const arg = fill(token, fillers);
      return matchToken(token, arg) && reference(token, arg);
    }),
    RUNS,
  );
});

void test('property: literal tokens are matched only by exactly equal arguments', () => {
  fc.assert(
    fc.property(
      fc.array(
        literalToken.filter((t) => !t.includes('*')),
        { maxLength: 5 },
      ),
      hostileArgs,
      (tokens, args) => {
        const p = compiled(tokens);
        const same = args.length === tokens.length && args.every((a, i) => a === tokens[i]);
        return matchArgv(p, CMD, args) === same && matchArgv(p, CMD, tokens);
      },
    ),
    RUNS,
  );
});

void test('property: an allowed argv has one argument per token, each matching its own token alone', () => {
  fc.assert(
    fc.property(
      fc.array(
        globToken.filter((t) => t !== '*'),
        { maxLength: 5 },
      ),
      fc.boolean(),
      hostileArgs,
      (tokens, rest, args) => {
        const p = compiled(tokens, rest);
        if (!matchArgv(p, CMD, args)) return true;
        if (!rest && args.length !== p.args.length) return false;
        if (rest && args.length < p.args.length) return false;
        return p.args.every((t, i) => reference(t, args[i] as string));
      },
    ),
    RUNS,
  );
});

void test('property: hostile text appended to a literal argument, or an extra argument, is refused', () => {
  const suffix = fc.constantFrom(
    ' ',
    ';',
    '; rm -rf /',
    ' && id',
    '$(id)',
    '`id`',
    '\n',
    '\n-u',
    '/..',
    '/../../etc/shadow',
    ' -x',
    '*',
  );
  fc.assert(
    fc.property(
      fc.array(
        literalToken.filter((t) => !t.includes('*')),
        { minLength: 1, maxLength: 5 },
      ),
      fc.nat(),
      suffix,
      (tokens, at, s) => {
        const p = compiled(tokens);
        const i = at % tokens.length;
        const widened = tokens.map((t, j) => (j === i ? t + s : t));
        const prefixed = tokens.map((t, j) => (j === i ? s + t : t));
        return !matchArgv(p, CMD, widened) && !matchArgv(p, CMD, prefixed) && !matchArgv(p, CMD, [...tokens, s]);
      },
    ),
    RUNS,
  );
});

void test('property: an argv whose joined text equals the pattern but is split differently is refused', () => {
  // The classic string-matching hole: [a, "b c"] and [a, b, c] render the same; argv-wise they differ.
  fc.assert(
    fc.property(
      fc.array(
        literalToken.filter((t) => !t.includes('*')),
        { minLength: 2, maxLength: 6 },
      ),
      fc.nat(),
      (tokens, at) => {
        const p = compiled(tokens);
        const i = at % (tokens.length - 1);
        const joined = [...tokens.slice(0, i), `${tokens[i]} ${tokens[i + 1]}`, ...tokens.slice(i + 2)];
        assert.equal(joined.join(' '), tokens.join(' '));
        return !matchArgv(p, CMD, joined);
      },
    ),
    RUNS,
  );
  fc.assert(
    fc.property(
      fc.array(
        literalToken.filter((t) => !t.includes('*')),
        { maxLength: 5 },
      ),
      hostileArgs,
      (tokens, args) => {
        const p = compiled(tokens);
        if (args.join(' ') !== tokens.join(' ')) return true;
        const same = args.length === tokens.length && args.every((a, i) => a === tokens[i]);
        return matchArgv(p, CMD, args) === same;
      },
    ),
    RUNS,
  );
});

void test('property: joining or splitting arguments never lets an argument cover two pattern tokens', () => {
  // Start from an argv the pattern allows (each * filled with hostile text, spaces included), then
  // split its text at the spaces or join it into one argument: the same characters, another argv. With
  // a different number of arguments it is refused, however the text lines up with the tokens.
  const fillers = fc.array(hostileString, { minLength: 1, maxLength: 4 });
  fc.assert(
    fc.property(
      fc.array(
        globToken.filter((t) => t !== '*'),
        { minLength: 1, maxLength: 4 },
      ),
      fillers,
      fc.boolean(),
      (tokens, fill_, join) => {
        const p = compiled(tokens);
        const allowed = tokens.map((t) => fill(t, fill_));
        if (!matchArgv(p, CMD, allowed)) return false;
        const other = join ? [allowed.join(' ')] : allowed.join(' ').split(' ');
        if (other.length === allowed.length) return true;
        return !matchArgv(p, CMD, other);
      },
    ),
    RUNS,
  );
  fc.assert(
    fc.property(
      fc.array(
        globToken.filter((t) => t !== '*'),
        { minLength: 1, maxLength: 4 },
      ),
      hostileArgs,
      (tokens, args) => {
        const p = compiled(tokens);
        return args.length === tokens.length || !matchArgv(p, CMD, args);
      },
    ),
    RUNS,
  );
  fc.assert(
    fc.property(
      fc.array(
        literalToken.filter((t) => !t.includes('*')),
        { minLength: 1, maxLength: 4 },
      ),
      fc.nat(),
      hostileString,
      hostileString,
      (tokens, at, left, right) => {
        const p = compiled(tokens);
        const i = at % tokens.length;
        const split = [...tokens.slice(0, i), left, right, ...tokens.slice(i + 1)];
        return !matchArgv(p, CMD, split);
      },
    ),
    RUNS,
  );
});

void test('property: compiled tokens never contain whitespace and survive a round trip', () => {
  const ws = fc.array(fc.constantFrom(' ', '\t'), { minLength: 1, maxLength: 3 }).map((a) => a.join(''));
  fc.assert(
    fc.property(fc.array(globToken, { minLength: 1, maxLength: 6 }), ws, (tokens, sep) => {
      const p = compilePattern(['cmd', ...tokens].join(sep), fakeResolve);
      const all = [...p.args, ...(p.rest ? ['*'] : [])];
      if (!all.every((t) => !/[ \t]/.test(t))) return false;
      const again = compilePattern(p.text, fakeResolve);
      return again.text === p.text && again.rest === p.rest && again.args.join('\0') === p.args.join('\0');
    }),
    RUNS,
  );
});

void test('property: a different command is never allowed, whatever the arguments', () => {
  fc.assert(
    fc.property(
      fc.array(globToken, { maxLength: 4 }),
      fc.boolean(),
      hostileArgs,
      hostileString,
      (tokens, rest, args, other) => {
        const p = compiled(tokens, rest);
        const cmd = `/fake/bin/cmd${other}`;
        return cmd === CMD || !matchArgv(p, cmd, args);
      },
    ),
    RUNS,
  );
});
