// What one identity may hold at once across all its Run and SudoRun requests, on every connection it
// has: commands running, and bytes of their output. A command's output counts from its first byte
// until its answer has been handed to the operating system (the caller releases it then), so a client
// that does not read its answers cannot park output in the daemon beyond the budget, however many
// connections it opens.

import { AdiError } from '../core/errors.js';
import type { OutputBudget } from '../system/run.js';

export interface IdentityLimits {
  /** Commands one identity may have running at once; one more gets TOO_MANY_COMMANDS. */
  maxCommands: number;
  /** Output bytes one identity's commands may hold at once, running or waiting to be sent. */
  outputBudgetBytes: number;
}

export const IDENTITY_DEFAULTS: IdentityLimits = {
  maxCommands: 16,
  // Two results of the largest size one frame carries; enough that a lone large command never meets it.
  outputBudgetBytes: 32 * 1024 * 1024,
};

interface Use {
  commands: number;
  bytes: number;
}

export class IdentityBudgets {
  private readonly use = new Map<string, Use>();

  constructor(readonly limits: IdentityLimits) {}

  /** Starts a command for `identity` (its label); throws TOO_MANY_COMMANDS at the maximum. */
  begin(identity: string): CommandLease {
    let use = this.use.get(identity);
    if (use === undefined) {
      use = { commands: 0, bytes: 0 };
      this.use.set(identity, use);
    }
    if (use.commands >= this.limits.maxCommands) {
      throw new AdiError(
        'TOO_MANY_COMMANDS',
        `${identity} already has ${use.commands} commands running, the most one identity may run at once (Run and SudoRun together, on all its connections); wait for one to finish.`,
      );
    }
    use.commands++;
    return new CommandLease(identity, use, this.limits.outputBudgetBytes, () => {
      if (use.commands === 0 && use.bytes === 0) this.use.delete(identity);
    });
  }

  /** What `identity` holds now. */
  usage(identity: string): Use {
    const use = this.use.get(identity);
    return { commands: use?.commands ?? 0, bytes: use?.bytes ?? 0 };
  }
}

/** One command's share of its identity's budget. end() and release() are each effective once. */
export class CommandLease implements OutputBudget {
  private held = 0;
  private running = true;

  constructor(
    private readonly identity: string,
    private readonly use: Use,
    private readonly limit: number,
    private readonly onIdle: () => void,
  ) {}

  take(bytes: number): boolean {
    if (this.use.bytes + bytes > this.limit) return false;
    this.use.bytes += bytes;
    this.held += bytes;
    return true;
  }

  get refused(): string {
    return `The output of ${this.identity}'s commands passed the ${this.limit} bytes one identity may hold at once (all its Run and SudoRun requests in flight, until their answers are sent); this command's process group was killed. Run fewer commands with large output at once, or have them write to a file.`;
  }

  /** The command is over: its slot is free (its output may still be held). */
  end(): void {
    if (!this.running) return;
    this.running = false;
    this.use.commands--;
    this.onIdle();
  }

  /** Its output has left the daemon (or was dropped): the bytes go back to the budget. */
  release(): void {
    this.use.bytes -= this.held;
    this.held = 0;
    this.onIdle();
  }
}
