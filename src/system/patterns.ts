// The privileged_commands pattern language. A pattern is split into
// tokens once, when it is approved, and then matched against an argv one argument per token. It is
// never matched against a command line as one string: sudo's manual warns that its own wildcards match
// spaces and slashes, so `iptables -L *` in sudoers also matches `iptables -L x -F`. Here an argument
// is always exactly one token's worth, whatever characters it contains.
//
//   tokens   runs of spaces/tabs separate tokens; the first names the command
//   literal  a token without `*` matches exactly that one argument
//   a*b      `*` inside a token matches any characters within that one argument only
//   *        a final lone `*` matches zero or more further arguments (any content)
//   ? [ ] \  ' " $ ;  are ordinary characters: there is no other syntax and no escaping.

import { AdiError } from '../core/errors.js';
import { resolveCommand } from './resolve.js';

/** Bounds on one pattern, so a manifest cannot make the check itself expensive. */
export const MAX_PATTERN_LENGTH = 4096;
export const MAX_PATTERN_TOKENS = 256;

export interface CompiledPattern {
  /** The pattern as approved, normalised: its tokens joined by single spaces. */
  readonly text: string;
  /** The command token resolved to its canonical absolute path (see resolveCommand). */
  readonly command: string;
  /** The argument tokens, without the final lone `*`. */
  readonly args: readonly string[];
  /** True when the pattern ended in a lone `*`: any further arguments are allowed. */
  readonly rest: boolean;
}

/** `pattern` is the approved pattern (its text) that allowed it; `reason` says why, for SudoDenied and the audit log. */
export type MatchResult = { allowed: true; pattern: string; reason: string } | { allowed: false; reason: string };

/** Any C0 control character except tab, or DEL. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

function bad(text: string, why: string): AdiError {
  return new AdiError('BAD_ARGUMENT', `Invalid privileged command pattern ${JSON.stringify(text)}: ${why}`);
}

/**
 * Parses and checks a pattern; the command token is resolved now (a bare name through the secure PATH,
 * an absolute path as is; a relative path is refused). Throws AdiError BAD_ARGUMENT for a malformed
 * pattern, COMMAND_NOT_FOUND when its command does not exist on this machine.
 */
export function compilePattern(text: string, resolve: (cmd: string) => string = resolveCommand): CompiledPattern {
  if (typeof text !== 'string') throw new AdiError('BAD_ARGUMENT', 'A privileged command pattern must be a string.');
  if (text.length > MAX_PATTERN_LENGTH)
    throw bad(text.slice(0, 80) + '...', `longer than ${MAX_PATTERN_LENGTH} characters.`);
  // Tabs separate tokens; every other control character (NUL, newline, CR, escape...) is refused: a
  // newline would also let a pattern forge a second line in a prompt or a log.
  if (hasControl(text)) throw bad(text, 'it contains a control character (NUL, newline, ...).');
  const trimmed = text.replace(/^[ \t]+|[ \t]+$/g, '');
  if (trimmed === '') throw bad(text, 'it is empty.');
  const tokens = trimmed.split(/[ \t]+/);
  if (tokens.length > MAX_PATTERN_TOKENS) throw bad(text, `more than ${MAX_PATTERN_TOKENS} tokens.`);
  const [command, ...rest] = tokens as [string, ...string[]];
  if (tokens.every((t) => /^\*+$/.test(t))) {
    throw bad(text, 'it would allow every command as root. Name the command and the arguments it needs.');
  }
  if (command.includes('*')) {
    throw bad(text, 'the command must be named exactly (no `*` in the first token).');
  }
  if (command.includes('/') && !command.startsWith('/')) {
    throw bad(text, 'the command is a relative path; use an absolute path or a bare name found in the secure PATH.');
  }
  let resolved: string;
  try {
    resolved = resolve(command);
  } catch (err) {
    if (err instanceof AdiError) {
      throw new AdiError(err.code, `Privileged command pattern ${JSON.stringify(text)}: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
  const hasRest = rest.length > 0 && rest[rest.length - 1] === '*';
  return Object.freeze({
    text: tokens.join(' '),
    command: resolved,
    args: Object.freeze(hasRest ? rest.slice(0, -1) : rest),
    rest: hasRest,
  });
}

/**
 * Whether one argument matches one token: literal characters match themselves, `*` matches any run of
 * characters (including none) within this argument. Linear backtracking on the last `*`, so a hostile
 * argument cannot make it exponential.
 */
export function matchToken(token: string, arg: string): boolean {
  if (!token.includes('*')) return token === arg;
  let t = 0;
  let a = 0;
  let starT = -1;
  let starA = 0;
  while (a < arg.length) {
    if (t < token.length && token[t] === '*') {
      starT = t++;
      starA = a;
    } else if (t < token.length && token[t] === arg[a]) {
      t++;
      a++;
    } else if (starT >= 0) {
      t = starT + 1;
      a = ++starA;
    } else {
      return false;
    }
  }
  while (t < token.length && token[t] === '*') t++;
  return t === token.length;
}

/** Whether `resolvedCommand args...` is what `pattern` allows. `resolvedCommand` must come from resolveCommand. */
export function matchArgv(pattern: CompiledPattern, resolvedCommand: string, args: readonly string[]): boolean {
  if (resolvedCommand !== pattern.command) return false;
  if (pattern.rest ? args.length < pattern.args.length : args.length !== pattern.args.length) return false;
  for (let i = 0; i < pattern.args.length; i++) {
    if (!matchToken(pattern.args[i] as string, args[i] as string)) return false;
  }
  return true;
}

/** The first approved pattern that allows the argv, with a reason either way. */
export function matchAny(
  patterns: readonly CompiledPattern[],
  resolvedCommand: string,
  args: readonly string[],
): MatchResult {
  for (const p of patterns) {
    if (matchArgv(p, resolvedCommand, args)) {
      return { allowed: true, pattern: p.text, reason: `allowed by the approved pattern ${JSON.stringify(p.text)}` };
    }
  }
  if (patterns.length === 0) return { allowed: false, reason: 'no privileged commands are approved for this caller' };
  const same = patterns.filter((p) => p.command === resolvedCommand);
  if (same.length === 0) {
    return { allowed: false, reason: `${resolvedCommand} is not among the approved privileged commands` };
  }
  const shown = same.map((p) => JSON.stringify(p.text)).join(', ');
  return {
    allowed: false,
    reason: `the arguments match none of the approved patterns for ${resolvedCommand} (${shown}); each argument must match its own token`,
  };
}

// Programs that run other programs or code given as arguments: a pattern for one of them with any
// freedom in its arguments is a grant of arbitrary code.
const RUNS_ANYTHING = new Set([
  'sh',
  'bash',
  'dash',
  'zsh',
  'ksh',
  'fish',
  'csh',
  'tcsh',
  'busybox',
  'env',
  'sudo',
  'su',
  'doas',
  'xargs',
  'nohup',
  'nice',
  'ionice',
  'timeout',
  'stdbuf',
  'chroot',
  'setsid',
  'runuser',
  'python',
  'python3',
  'perl',
  'ruby',
  'node',
  'php',
  'lua',
  'awk',
  'gawk',
  'mawk',
  'find',
  'vim',
  'vi',
  'less',
  'more',
  'man',
  'git',
  'tar',
  'rsync',
  'systemd-run',
  'docker',
  'podman',
  'crontab',
  'tee',
  'dd',
  'cp',
  'mv',
  'install',
  'chmod',
  'chown',
]);

/**
 * Plain-language lines for the install prompt: what the pattern grants, and the pitfalls it carries.
 * The common example `iptables -t nat *` also grants `--modprobe=/tmp/x`, which runs /tmp/x as root.
 */
export function explainPattern(p: CompiledPattern): string[] {
  const lines: string[] = [];
  const fixed = p.args.map((a) => (a.includes('*') ? `${a} (one argument; * matches any characters in it)` : a));
  lines.push(
    p.args.length === 0
      ? `runs ${p.command} as root${p.rest ? '' : ' with no arguments'}`
      : `runs ${p.command} as root with the arguments: ${fixed.join(', ')}`,
  );
  if (p.rest) {
    lines.push(
      'the final * lets the caller add ANY further arguments, options included (e.g. `iptables -t nat *` also grants `--modprobe=/path`, which runs that program as root): approve it only if every option of the program is safe',
    );
  }
  if (p.args.some((a) => a.includes('*'))) {
    lines.push('a * inside an argument matches any text in that argument, including paths, `..` and option values');
  }
  const base = p.command.slice(p.command.lastIndexOf('/') + 1).replace(/[0-9.]+$/, '');
  if (RUNS_ANYTHING.has(base) && (p.rest || p.args.some((a) => a.includes('*')))) {
    lines.push(
      `${base} can run other programs or write files as directed by its arguments: with wildcards this is full root access`,
    );
  }
  return lines;
}
