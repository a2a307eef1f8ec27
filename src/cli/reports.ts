// The daemon's reports as the CLI shows them (status, services, reload, start): the service
// definitions' errors and what is degraded. On stderr, so a table or JSON on stdout stays parseable.

export interface Reports {
  config_errors?: string[];
  problems?: string[];
}

/** The lines to print, empty when there is nothing to report. */
export function reportLines(r: Reports): string[] {
  const out: string[] = [];
  const config = r.config_errors ?? [];
  if (config.length > 0) {
    out.push(`service definition errors (fix them, then run 'adi daemon reload'):`);
    for (const e of config) out.push(`  ${e}`);
  }
  for (const p of r.problems ?? []) out.push(`degraded: ${p}`);
  return out;
}

export function writeReports(stream: NodeJS.WritableStream, r: Reports): void {
  const lines = reportLines(r);
  if (lines.length > 0) stream.write(`${lines.join('\n')}\n`);
}
