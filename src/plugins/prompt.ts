// The install prompt for privileged commands:
//
//   This plugin requests root access for:
//     - iptables -t nat *
//         runs /usr/sbin/iptables as root with the arguments: -t, nat
//         the final * lets the caller add ANY further arguments, options included (...)
//   Allow? [y/N]
//
// Each pattern is shown exactly as the manifest wrote it (that string is what gets approved and
// stored), followed by what it grants in plain words (explainPattern): a trailing `*` is where most of
// the danger hides.

import path from 'node:path';
import { compilePattern, explainPattern, type CompiledPattern } from '../system/patterns.js';

export const PROMPT_HEADER = 'This plugin requests root access for:';
export const PROMPT_QUESTION = 'Allow? [y/N] ';

/**
 * Commands that run whatever code or command they are given: shells, interpreters and launchers. As
 * root, such a pattern grants whatever its script says, not a fixed action.
 */
const RUNS_CODE =
  /^(?:sh|bash|dash|zsh|ksh|mksh|pdksh|ash|csh|tcsh|fish|busybox|node|nodejs|deno|bun|python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|irb|php[0-9.]*|lua[0-9.]*|luajit|tclsh[0-9.]*|wish[0-9.]*|expect|awk|gawk|mawk|nawk|env|xargs|find|sudo|su|doas|nice|nohup|timeout|stdbuf|setsid|chroot|flock|ionice|taskset|unshare|nsenter|strace|ltrace|gdb|script|watch|make|java|jshell|Rscript|R|pwsh|elixir|erl|escript|guile|racket|sbcl|julia|ts-node|tsx|npx|npm|yarn|pnpm)$/;

/**
 * Why a pattern runs code shipped by the plugin as root, in words, or null: its command is a shell,
 * an interpreter or a launcher, or it names a file inside the plugin's own folder `pluginDir`.
 */
export function pluginCodeWarning(c: CompiledPattern, pluginDir: string | null): string | null {
  const first = c.text.split(' ')[0] ?? '';
  const inPlugin = (p: string): boolean => pluginDir !== null && (p === pluginDir || p.startsWith(`${pluginDir}/`));
  for (const cmd of [first, c.command]) {
    const base = path.basename(cmd);
    if (RUNS_CODE.test(base)) {
      return `WARNING: this runs plugin-shipped code as root: ${base} is a shell or interpreter, so it runs as root whatever script or code it is given${c.rest ? ' (and the final * lets the plugin add anything)' : ''}, and the plugin can change that code with any update.`;
    }
  }
  if (inPlugin(c.command)) {
    return `WARNING: this runs plugin-shipped code as root: ${c.command} is a file inside the plugin's own folder, which the plugin can change with any update.`;
  }
  const file = c.args.find(inPlugin);
  if (file !== undefined) {
    return `WARNING: this runs plugin-shipped code as root: ${file} is a file inside the plugin's own folder, so as root the command does whatever that file says, and the plugin can change it with any update.`;
  }
  return null;
}

/**
 * The lines shown before the question (no trailing newline on any). `pluginDir` is where the plugin
 * will be installed, to recognise patterns that name its files.
 */
export function approvalLines(
  patterns: readonly string[],
  resolve?: (cmd: string) => string,
  pluginDir: string | null = null,
): string[] {
  const lines = [PROMPT_HEADER];
  for (const p of patterns) {
    lines.push(`  - ${p}`);
    const compiled = compilePattern(p, resolve);
    for (const why of explainPattern(compiled)) lines.push(`      ${why}`);
    const warning = pluginCodeWarning(compiled, pluginDir);
    if (warning !== null) lines.push(`      ${warning}`);
  }
  return lines;
}

/** Whether an answer approves: y or yes, any case; anything else (an empty line too) is No. */
export function isYes(answer: string | null): boolean {
  return answer !== null && /^\s*y(es)?\s*$/i.test(answer);
}

/** Same approval: exactly the same pattern strings (order does not matter). */
export function samePatterns(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((p, i) => p === y[i]);
}
