// The layers of src/ (ARCHITECTURE.md draws them). Each folder may import itself and the folders
// listed for it, nothing else: the arrows point one way, down to `core`. `npm run lint` runs this.
//
//   cli -> client -> protocol/wire <- server -> plugins -> services -> logs -> system -> core
//                                            -> executor ------------------^
const MAY_IMPORT = {
  cli: ['client', 'server', 'plugins', 'services', 'executor', 'logs', 'protocol', 'wire', 'system', 'core'],
  client: ['protocol', 'wire', 'core'],
  server: ['plugins', 'services', 'executor', 'logs', 'protocol', 'wire', 'system', 'core'],
  plugins: ['services', 'protocol', 'system', 'core'],
  services: ['logs', 'protocol', 'system', 'core'],
  executor: ['protocol', 'system', 'core'],
  logs: ['protocol', 'system', 'core'],
  protocol: ['core'],
  wire: ['protocol', 'core'],
  system: ['core'],
  core: [],
};
const LAYERS = Object.keys(MAY_IMPORT);

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment:
        'A cycle makes two modules one: merge them or move what both need further down. A lazy import() ' +
        'does not count: the command table loads each command on demand, and `adi completion` reads the table.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['dynamic-import'] } },
    },
    ...LAYERS.map((layer) => ({
      name: `layer-${layer}`,
      comment: `src/${layer}/ may import only ${MAY_IMPORT[layer].join(', ') || 'itself'} (see ARCHITECTURE.md).`,
      severity: 'error',
      from: { path: `^src/${layer}/` },
      to: { path: '^src/', pathNot: [`^src/${layer}/`, ...MAY_IMPORT[layer].map((l) => `^src/${l}/`)] },
    })),
    {
      name: 'no-stray-module',
      comment: 'Every source file lives in a layer folder (index.ts, the package entry, excepted).',
      severity: 'error',
      from: { path: '^src/[^/]+\\.ts$', pathNot: '^src/index\\.ts$' },
      to: {},
    },
    {
      name: 'index-exports-the-client-surface',
      severity: 'error',
      from: { path: '^src/index\\.ts$' },
      to: { path: '^src/', pathNot: ['^src/(client|protocol|core)/'] },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)' },
  },
};
