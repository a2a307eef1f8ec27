import { resolvePaths } from '../../core/paths.js';
import { readApproval } from '../../plugins/approvals.js';
import { listInstalled } from '../../plugins/installed.js';
import { pluginsRoot } from '../../plugins/location.js';
import { serviceOwners } from '../../plugins/owners.js';
import { samePatterns } from '../../plugins/prompt.js';
import { defineCommand } from '../command.js';

export interface PluginListEntry {
  name: string;
  version: string | null;
  /** The service the plugin defines, or null. */
  service: string | null;
  /** The privileged commands its manifest requests. */
  requested_patterns: string[];
  /** The approved patterns (what SudoRun allows it), and for which version they were approved. */
  approved_patterns: string[];
  approved_version: string | null;
  dir: string;
  /** Why the plugin cannot be used (invalid manifest), or null. */
  error: string | null;
  /** The other owners of its service name (services.toml, other plugins): the daemon keeps only one. */
  conflicts: string[];
}

export const command = defineCommand({
  name: 'plugin list',
  args: [],
  options: { json: { type: 'boolean', help: 'Print a JSON array (fields above) instead of a table' } },
  description: `Lists the installed plugins with their version, the service each defines and the privileged command
patterns approved for it. --json prints an array of objects:
  { name, version, service, requested_patterns, approved_patterns, approved_version, dir, error, conflicts }
A service name defined by more than one source (services.toml, another plugin) is a conflict: the
list shows it (CONFLICT) and \`conflicts\` names the other owners.`,
  async run({ values }, io) {
    const paths = resolvePaths({ env: io.env });
    const loc = pluginsRoot(paths);
    const owners = serviceOwners(paths, loc);
    const list: PluginListEntry[] = listInstalled(loc, { resolve: (cmd) => cmd }).map((p) => {
      const approval = readApproval(paths, p.name);
      const service = p.manifest?.service?.name ?? null;
      return {
        name: p.name,
        version: p.manifest?.version ?? null,
        service: p.manifest?.service?.name ?? null,
        requested_patterns: p.manifest?.service?.privileged_commands ?? [],
        approved_patterns: approval?.patterns ?? [],
        approved_version: approval?.version ?? null,
        dir: p.dir,
        error: p.error,
        conflicts: service === null ? [] : (owners.get(service) ?? []).filter((o) => o !== `plugin ${p.name}`),
      };
    });
    if (values.json === true) {
      io.stdout.write(`${JSON.stringify(list)}\n`);
      return 0;
    }
    if (list.length === 0) {
      io.stdout.write(
        `no plugins installed (in ${loc.dir}); install one with 'adi plugin install <folder | .tgz | package>'\n`,
      );
      return 0;
    }
    const header = ['NAME', 'VERSION', 'SERVICE', 'APPROVED ROOT ACCESS'];
    const rows = list.map((p) =>
      [
        p.name,
        p.version ?? '?',
        p.service ?? '-',
        p.error !== null
          ? `invalid: ${p.error.split('\n').join(' ')}`
          : p.approved_patterns.length > 0
            ? p.approved_patterns.join(', ') +
              (samePatterns(p.approved_patterns, p.requested_patterns)
                ? ''
                : ' (differs from what it requests: reinstall to approve)')
            : p.requested_patterns.length > 0
              ? 'none (requested but not approved: reinstall to approve)'
              : '-',
      ].map((cell, i, row) =>
        i === row.length - 1 && p.conflicts.length > 0
          ? `${cell}  CONFLICT: service "${p.service ?? ''}" is also defined by ${p.conflicts.map((c) => c.replace(/ \(.*\)$/, '')).join(', ')}`
          : cell,
      ),
    );
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: string[]): string =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    io.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n');
    return 0;
  },
});
