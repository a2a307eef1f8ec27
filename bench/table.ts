// One table for the whole run: each figure absolute, its baseline from the same run, the ratio between
// them and the target. Printed as Markdown so a run can be pasted into docs/performance.md as is.

export type Unit = 'us' | 'ms' | 's' | 'req/s' | 'MB' | 'MB/s' | '%' | 'lines' | 'x';

export interface Target {
  /** As shown, e.g. "≤ 1.3x" or "≤ 10 ms". */
  text: string;
  ok: boolean;
}

export interface Row {
  group: string;
  metric: string;
  value: number;
  unit: Unit;
  /** What the figure is compared with, measured in the same run (null: no meaningful baseline). */
  baselineLabel: string | null;
  baseline: number | null;
  target: Target | null;
  note?: string;
}

export function ratio(row: Row): number | null {
  if (row.baseline === null || !Number.isFinite(row.baseline) || row.baseline === 0 || !Number.isFinite(row.value))
    return null;
  return row.value / row.baseline;
}

export function formatValue(value: number | null, unit: Unit): string {
  if (value === null || !Number.isFinite(value)) return 'n/a';
  switch (unit) {
    case 'us':
      return `${value < 100 ? value.toFixed(1) : value.toFixed(0)} µs`;
    case 'ms':
      return `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0)} ms`;
    case 's':
      return `${value.toFixed(2)} s`;
    case 'req/s':
      return value >= 1000 ? `${(value / 1000).toFixed(1)}k req/s` : `${value.toFixed(0)} req/s`;
    case 'MB':
      return `${value.toFixed(1)} MB`;
    case 'MB/s':
      return `${value.toFixed(1)} MB/s`;
    case '%':
      return `${value.toFixed(2)} %`;
    case 'lines':
      return `${value.toFixed(0)}`;
    case 'x':
      return `${value.toFixed(2)}x`;
  }
}

function formatRatio(r: number | null): string {
  if (r === null) return '—';
  return r >= 100 ? `${r.toFixed(0)}x` : `${r.toFixed(2)}x`;
}

export function renderTable(rows: readonly Row[]): string {
  const header = ['group', 'metric', 'value', 'baseline (same run)', 'ratio', 'target', ''];
  const body = rows.map((row) => [
    row.group,
    row.metric + (row.note ? ` (${row.note})` : ''),
    formatValue(row.value, row.unit),
    row.baselineLabel === null ? '—' : `${row.baselineLabel}: ${formatValue(row.baseline, row.unit)}`,
    formatRatio(ratio(row)),
    row.target?.text ?? '',
    row.target === null ? '' : row.target.ok ? '✓' : '✗',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] as string).length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

export function jsonRows(rows: readonly Row[]): object[] {
  return rows.map((row) => ({ ...row, ratio: ratio(row) }));
}
