// The daemon's own log: one line per event, each with an ISO timestamp and a level. It goes to the log
// file and, under `adi daemon run`, to the terminal as well.

import fs from 'node:fs';

export type Level = 'info' | 'warn' | 'error';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function formatLogLine(level: Level, message: string, now = new Date()): string {
  // One event, one line: a newline inside a message would let it forge a second entry.
  return `${now.toISOString()} ${level.toUpperCase().padEnd(5)} ${message.replace(/[\r\n]+/g, ' ')}\n`;
}

export class FileLogger implements Logger {
  private fd: number | null;

  constructor(
    file: string | null,
    private readonly echo: NodeJS.WritableStream | null,
  ) {
    this.fd = null;
    if (file !== null) {
      // O_APPEND so that a second writer (a previous daemon's last words) never tears our lines.
      this.fd = fs.openSync(
        file,
        fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW,
        0o600,
      );
    }
  }

  info(message: string): void {
    this.write('info', message);
  }
  warn(message: string): void {
    this.write('warn', message);
  }
  error(message: string): void {
    this.write('error', message);
  }

  private write(level: Level, message: string): void {
    const line = formatLogLine(level, message);
    if (this.fd !== null) {
      try {
        fs.writeSync(this.fd, line);
      } catch {
        // A full or vanished log must not take the daemon down; the terminal copy (if any) still shows it.
      }
    }
    this.echo?.write(line);
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** A logger that keeps lines in memory, for tests of modules that log. */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  info(message: string): void {
    this.lines.push(`INFO ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`WARN ${message}`);
  }
  error(message: string): void {
    this.lines.push(`ERROR ${message}`);
  }
}
