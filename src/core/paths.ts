// Every file location the daemon and its clients use, and the environment overrides for each. Nothing else in the code builds a path from the
// environment, so one read of this file answers "where does adi keep X?".

import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { AdiError } from './errors.js';

/**
 * `adi daemon start` gives the daemon it spawns a status pipe; the daemon finds its end at the fd named
 * by this variable and writes `ok` or `error: <why>` there once it has started or failed.
 */
export const STATUS_FD_ENV = 'ADI_DAEMON_STATUS_FD';
/** Names of the allocator settings the launcher added for the daemon alone (comma-separated). */
export const DAEMON_ONLY_ENV = 'ADI_DAEMON_ONLY_ENV';
export type EndpointKind = 'unix' | 'abstract' | 'pipe';

export interface Endpoint {
  kind: EndpointKind;
  /** What node:net listens on / connects to (an abstract name starts with a NUL byte). */
  address: string;
  /** How to show it to a person: a path, "@name", or a pipe path. */
  display: string;
  /** The file behind a `unix` endpoint, for cleanup and permission checks; null otherwise. */
  file: string | null;
}

export interface Paths {
  /** `$XDG_DATA_HOME/adi`, default `~/.local/share/adi`. */
  dataDir: string;
  socket: Endpoint;
  pidFile: string;
  /** The daemon's own log: `<data dir>/logs/daemon.log` or ADI_DAEMON_LOG. */
  logFile: string;
  /** Per-service logs and the audit log live here. */
  logsDir: string;
  /** Held while a daemon starts, so concurrent starts make one daemon. */
  lockFile: string;
  /** The admin token (mode 0600): a client that can read it is the admin. */
  tokenFile: string;
  /** The daemon's record of the service processes it runs (crash recovery). */
  stateFile: string;
  /** `$XDG_CONFIG_HOME/adi`, default `~/.config/adi`. */
  configDir: string;
  /** The user's service definitions. */
  servicesFile: string;
  /** Installed plugins, one folder each. */
  pluginsDir: string;
  /** The user names of the privilege model. */
  adiUser: string;
  adiRootUser: string;
}

/** sun_path is 108 bytes on Linux and 104 on macOS/BSD, one of which is the terminating NUL. */
export function socketPathLimit(platform: NodeJS.Platform): number {
  return platform === 'linux' ? 107 : 103;
}

export interface PathInputs {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  home?: string;
}

export function resolvePaths(inputs: PathInputs = {}): Paths {
  const env = inputs.env ?? process.env;
  const platform = inputs.platform ?? process.platform;
  // HOME from the given environment first, so a client built for another environment resolves its paths.
  const home = inputs.home ?? (platform === 'win32' ? env['USERPROFILE'] : env['HOME']) ?? os.homedir();
  const p = platform === 'win32' ? path.win32 : path.posix;

  const nonEmpty = (name: string): string | undefined => {
    const v = env[name];
    return v !== undefined && v !== '' ? v : undefined;
  };

  const dataHome =
    nonEmpty('XDG_DATA_HOME') ??
    (platform === 'win32'
      ? (nonEmpty('LOCALAPPDATA') ?? p.join(home, 'AppData', 'Local'))
      : p.join(home, '.local', 'share'));
  const configHome =
    nonEmpty('XDG_CONFIG_HOME') ??
    (platform === 'win32' ? (nonEmpty('APPDATA') ?? p.join(home, 'AppData', 'Roaming')) : p.join(home, '.config'));

  const dataDir = p.join(dataHome, 'adi');
  const configDir = p.join(configHome, 'adi');
  const logFile = nonEmpty('ADI_DAEMON_LOG') ?? p.join(dataDir, 'logs', 'daemon.log');

  return {
    dataDir,
    socket: resolveEndpoint(nonEmpty('ADI_DAEMON_SOCKET'), platform, dataDir),
    pidFile: nonEmpty('ADI_DAEMON_PID') ?? p.join(dataDir, 'daemon.pid'),
    logFile,
    logsDir: p.join(dataDir, 'logs'),
    lockFile: p.join(dataDir, 'daemon.lock'),
    tokenFile: p.join(dataDir, 'daemon.token'),
    stateFile: p.join(dataDir, 'state.json'),
    configDir,
    servicesFile: p.join(configDir, 'services.toml'),
    pluginsDir: p.join(dataDir, 'plugins'),
    adiUser: nonEmpty('ADI_USER') ?? 'adi',
    adiRootUser: nonEmpty('ADI_ROOT_USER') ?? 'adi-root',
  };
}

/**
 * Where the daemon listens. ADI_DAEMON_SOCKET may name a file path, `@name` (a Linux abstract socket,
 * no file at all) or, on Windows, a pipe name or `\\.\pipe\...` path.
 */
export function resolveEndpoint(override: string | undefined, platform: NodeJS.Platform, dataDir: string): Endpoint {
  if (platform === 'win32') {
    const value = override ?? '\\\\.\\pipe\\adi-daemon';
    const address = /^\\\\[.?]\\pipe\\/i.test(value) ? value : `\\\\.\\pipe\\${value}`;
    if (address.length > 256) {
      throw new AdiError(
        'PATH_TOO_LONG',
        `The pipe name ${address} is longer than Windows allows (256). Set ADI_DAEMON_SOCKET to a shorter name.`,
      );
    }
    return { kind: 'pipe', address, display: address, file: null };
  }

  const limit = socketPathLimit(platform);
  if (override !== undefined && override.startsWith('@')) {
    if (platform !== 'linux') {
      throw new AdiError(
        'BAD_CONFIG',
        `ADI_DAEMON_SOCKET=${override} asks for an abstract socket, which only Linux has. Set it to a file path instead.`,
      );
    }
    const name = override.slice(1);
    if (name === '' || name.includes('\0')) {
      throw new AdiError(
        'BAD_CONFIG',
        `ADI_DAEMON_SOCKET=${JSON.stringify(override)} needs a name after '@' with no NUL byte, e.g. @adi-daemon.`,
      );
    }
    if (Buffer.byteLength(name) > limit) {
      throw new AdiError(
        'PATH_TOO_LONG',
        `The abstract socket name @${name} is ${Buffer.byteLength(name)} bytes; Linux allows ${limit}. Set ADI_DAEMON_SOCKET to a shorter @name.`,
      );
    }
    return { kind: 'abstract', address: `\0${name}`, display: `@${name}`, file: null };
  }

  const file = path.posix.resolve(override ?? path.posix.join(dataDir, 'daemon.sock'));
  if (file.includes('\0')) {
    throw new AdiError('BAD_CONFIG', 'ADI_DAEMON_SOCKET contains a NUL byte. Set it to a plain file path.');
  }
  const bytes = Buffer.byteLength(file);
  if (bytes > limit) {
    const hint =
      override === undefined
        ? 'Set ADI_DAEMON_SOCKET to a shorter path (or XDG_DATA_HOME to a shorter directory)'
        : 'Set ADI_DAEMON_SOCKET to a shorter path';
    throw new AdiError(
      'PATH_TOO_LONG',
      `The socket path ${file} is ${bytes} bytes; ${platform === 'linux' ? 'Linux' : 'this platform'} allows ${limit}. ${hint}${platform === 'linux' ? ', or to @adi-daemon for an abstract socket' : ''}.`,
    );
  }
  return { kind: 'unix', address: file, display: file, file };
}

/** Service and plugin names: they become file names and environment values, so they are kept plain. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function checkName(kind: 'service' | 'plugin', name: unknown): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name.includes('..')) {
    const shown = typeof name === 'string' ? JSON.stringify(name) : typeof name;
    throw new AdiError(
      'BAD_SERVICE_NAME',
      `Invalid ${kind} name ${shown}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit, with no '..'.`,
    );
  }
  return name;
}

/**
 * The second socket, for plugin services running as ADI_USER: they cannot enter the
 * admin's data dir (0700, often inside a 0700 home), so it lives in a per-admin directory outside it —
 * `/run/adi-daemon-<uid>/` for a root daemon, `/tmp/adi-daemon-<uid>/` otherwise (no other writable
 * place is shared by every user). The file name carries a hash of the data dir, so daemons of several
 * data dirs of one user (tests, XDG_DATA_HOME switches) never share it. ADI_DAEMON_PLUGIN_SOCKET
 * overrides it (a path, or `@name` for a Linux abstract socket). Only the daemon uses this: a plugin
 * service is told the address in its $ADI_DAEMON_SOCKET.
 */
export function resolvePluginEndpoint(
  dataDir: string,
  inputs: { env?: NodeJS.ProcessEnv; platform?: NodeJS.Platform; uid?: number } = {},
): Endpoint {
  const env = inputs.env ?? process.env;
  const platform = inputs.platform ?? process.platform;
  const override = env['ADI_DAEMON_PLUGIN_SOCKET'];
  if (override !== undefined && override !== '') {
    try {
      return resolveEndpoint(override, platform, dataDir);
    } catch (err) {
      if (err instanceof AdiError)
        throw new AdiError(err.code, err.message.replaceAll('ADI_DAEMON_SOCKET', 'ADI_DAEMON_PLUGIN_SOCKET'));
      throw err;
    }
  }
  const uid = inputs.uid ?? process.getuid?.() ?? 0;
  const dir = uid === 0 ? `/run/adi-daemon-${uid}` : `/tmp/adi-daemon-${uid}`;
  const tag = crypto.createHash('sha256').update(dataDir).digest('hex').slice(0, 12);
  return resolveEndpoint(path.posix.join(dir, `plugins-${tag}.sock`), platform, dataDir);
}
