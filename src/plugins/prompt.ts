// The install prompt for privileged commands, in the seed's words ("Plugin Manifest"):
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

import { compilePattern, explainPattern } from '../executor/patterns.js';

export const PROMPT_HEADER = 'This plugin requests root access for:';
export const PROMPT_QUESTION = 'Allow? [y/N] ';

/** The lines shown before the question (no trailing newline on any). */
export function approvalLines(patterns: readonly string[], resolve?: (cmd: string) => string): string[] {
  const lines = [PROMPT_HEADER];
  for (const p of patterns) {
    lines.push(`  - ${p}`);
    for (const why of explainPattern(compilePattern(p, resolve))) lines.push(`      ${why}`);
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
