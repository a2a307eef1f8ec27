// `adi __complete WORD...`: what completes the last word of `adi WORD...`, worked out from the command
// table and the spec of the one command being typed (only its module is loaded). The completion
// scripts (commands/completion.ts) only call this and hand the answer to their shell.
//
// The answer, one item a line: first what the shell should do, then the candidates:
//   words            then each candidate as WORD or WORD<TAB>DESCRIPTION, already matched to the prefix
//   files | dirs     complete file (directory) names the shell's own way; no candidates follow

import { DaemonClient } from '../client/client.js';
import { packageVersion } from '../core/version.js';
import type { ArgSpec, CliIO, CommandSpec, OptionSpec } from './command.js';
import { COMMANDS, GROUPS, TOP, type Entry } from './table.js';

export interface Completion {
  kind: 'words' | 'files' | 'dirs';
  words: { word: string; description?: string }[];
}

const NOTHING: Completion = { kind: 'words', words: [] };

/** The first sentence of a help text, short enough for a completion menu. */
function brief(help: string): string {
  const first = help.replace(/\s+/g, ' ').split(/(?<=[.;:(])\s/)[0] ?? '';
  return first.replace(/[.;:(]$/, '').trim();
}

function matching(prefix: string, words: Completion['words']): Completion {
  return { kind: 'words', words: words.filter((w) => w.word.startsWith(prefix)) };
}

/** The options of a spec as completion words: long forms, and short ones when the prefix is `-x`. */
function optionWords(spec: CommandSpec, prefix: string): Completion {
  const words: Completion['words'] = [];
  for (const [key, o] of Object.entries(spec.options)) {
    if (o.hidden === true) continue;
    words.push({ word: `--${key}`, description: brief(o.help) });
    if (o.short !== undefined && !prefix.startsWith('--'))
      words.push({ word: `-${o.short}`, description: brief(o.help) });
  }
  words.push({ word: '--help', description: 'Show help' });
  return matching(prefix, words);
}

/** The option a word names (`--lines`, `-n`), or undefined. */
function optionNamed(spec: CommandSpec, word: string): OptionSpec | undefined {
  if (word.startsWith('--'))
    return Object.hasOwn(spec.options, word.slice(2)) ? spec.options[word.slice(2)] : undefined;
  return Object.values(spec.options).find((o) => o.short !== undefined && word === `-${o.short}`);
}

export async function complete(words: readonly string[], services: () => Promise<string[]>): Promise<Completion> {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  const [first, second] = before;
  if (first === undefined) {
    if (current.startsWith('-')) return matching(current, [{ word: '--help' }, { word: '--version' }]);
    return matching(current, [
      ...Object.entries(GROUPS).map(([word, description]) => ({ word, description })),
      ...Object.entries(TOP).map(([word, e]) => ({ word, description: e.summary })),
    ]);
  }
  let entry: Entry | undefined;
  let rest: string[];
  if (Object.hasOwn(GROUPS, first)) {
    if (second === undefined) {
      if (current.startsWith('-')) return matching(current, [{ word: '--help' }]);
      const prefix = `${first} `;
      return matching(
        current,
        Object.entries(COMMANDS)
          .filter(([name]) => name.startsWith(prefix))
          .map(([name, e]) => ({ word: name.slice(prefix.length), description: e.summary })),
      );
    }
    const name = `${first} ${second}`;
    entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    rest = before.slice(2);
  } else {
    entry = Object.hasOwn(TOP, first) ? TOP[first] : undefined;
    rest = before.slice(1);
  }
  if (entry === undefined) return NOTHING;
  const { spec } = (await entry.load()).command;

  // The words typed so far: which are arguments, and whether the last one waits for its value.
  let positionals = 0;
  let valueOf: OptionSpec | undefined;
  for (const word of rest) {
    if (valueOf !== undefined) {
      valueOf = undefined;
    } else if (word === '--') {
      // A command line of its own follows (adi daemon start NAME -- COMMAND ...), or only arguments.
      if (spec.commandLine !== undefined) return { kind: 'files', words: [] };
      positionals = Infinity;
    } else if (word.startsWith('-') && word !== '-' && positionals !== Infinity) {
      const option = word.includes('=') ? undefined : optionNamed(spec, word);
      if (option?.type === 'string') valueOf = option;
    } else {
      positionals++;
    }
  }
  if (valueOf !== undefined) return valueOf.complete === 'dir' ? { kind: 'dirs', words: [] } : NOTHING;
  if (current.startsWith('-') && positionals !== Infinity) return optionWords(spec, current);
  const last = spec.args[spec.args.length - 1];
  const arg: ArgSpec | undefined = spec.args[positionals] ?? (last?.variadic === true ? last : undefined);
  if (arg === undefined) return NOTHING;
  if (arg.choices !== undefined)
    return matching(
      current,
      arg.choices.map((word) => ({ word })),
    );
  if (arg.complete === 'file') return { kind: 'files', words: [] };
  if (arg.service === true) {
    const already = new Set(rest);
    return matching(
      current,
      (await services()).filter((s) => !already.has(s)).map((word) => ({ word })),
    );
  }
  return NOTHING;
}

/**
 * The daemon's service names; none when no daemon answers. It never starts one, and gives up quickly,
 * since a person is waiting on a TAB.
 */
export async function serviceNames(io: CliIO): Promise<string[]> {
  const client = new DaemonClient({
    env: io.env,
    clientName: `adi-completion/${packageVersion()}`,
    connectTimeoutMs: 300,
    timeoutMs: 1500,
  });
  try {
    return (await client.listServices()).map((s) => s.name);
  } catch {
    // No daemon, another user's, or slow: complete nothing rather than print an error into a prompt.
    return [];
  } finally {
    client.close();
  }
}

/** `adi __complete WORD...`: prints the answer described at the top. Never fails: a prompt is no place for errors. */
export async function runComplete(words: string[], io: CliIO): Promise<number> {
  let c: Completion;
  try {
    c = await complete(words, () => serviceNames(io));
  } catch {
    c = NOTHING;
  }
  const lines = [c.kind, ...c.words.map((w) => (w.description ? `${w.word}\t${w.description}` : w.word))];
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
