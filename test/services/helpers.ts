// Shared set-up for the services tests: a fresh temp HOME / data / config dir per manager, fixture
// paths, polling waits, and a /proc scan that finds every process a test's manager started (tagged
// through the base environment, so tests running in parallel never see each other's processes).

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { resolvePaths, type Paths } from '../../src/core/paths.js';
import type { ServiceConfig, ServiceInfo } from '../../src/protocol/types.js';
import { validateServiceConfig, type NormalizedConfig } from '../../src/protocol/config-schema.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { ServiceManager, type ServiceManagerOptions } from '../../src/services/manager.js';
import { isAlive } from '../../src/system/alive.js';
import { FIXTURES, waitFor } from '../helpers/env.js';
import { environHas, processIds } from '../helpers/proc.js';
import { realClock, type Clock } from '../../src/services/runtime.js';

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

/** A ServiceConfig running a fixture with this Node. */
export function nodeService(name: string, args: string[] = [], extra: Partial<ServiceConfig> = {}): ServiceConfig {
  return { command: process.execPath, args: [fixture(name), ...args], ...extra };
}

/**
 * A config as the daemon holds it once parseRequest has validated a StartService (ServiceManager.start
 * takes only that): for tests that start ad-hoc services on a manager directly.
 */
export function adhoc(config: ServiceConfig): NormalizedConfig {
  const result = validateServiceConfig(config);
  if (result.config === null) throw new Error(`bad test config: ${JSON.stringify(result.errors)}`);
  return result.config;
}

/** A ServiceConfig running a shell fixture with /bin/sh. */
export function shService(name: string, extra: Partial<ServiceConfig> = {}): ServiceConfig {
  return { command: '/bin/sh', args: [fixture(name)], ...extra };
}

/** The real clock, counting the timers set through it and not yet fired or cleared. */
export interface CountingClock extends Clock {
  pending(): number;
}

export function countingClock(): CountingClock {
  const live = new Set<unknown>();
  return {
    now: () => realClock.now(),
    setTimer(ms, fn) {
      const timer = realClock.setTimer(ms, () => {
        live.delete(timer);
        fn();
      });
      live.add(timer);
      return timer;
    },
    clearTimer(timer) {
      live.delete(timer);
      realClock.clearTimer(timer);
    },
    pending: () => live.size,
  };
}

export interface TestEnv {
  dir: string;
  paths: Paths;
  log: MemoryLogger;
  tag: string;
  manager: ServiceManager;
  /** The services' clock: tells whether any restart or stop timer is pending. */
  clock: CountingClock;
  /** Write services.toml. */
  writeServices(text: string): void;
  /** Stop everything, check nothing of ours is left, remove the temp dir. */
  cleanup(): Promise<void>;
}

export function makeEnv(opts: Partial<ServiceManagerOptions> = {}): TestEnv {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'adi-svc-'));
  const paths = resolvePaths({
    env: { XDG_DATA_HOME: path.join(dir, 'data'), XDG_CONFIG_HOME: path.join(dir, 'config') },
    home: dir,
  });
  const log = new MemoryLogger();
  const tag = path.basename(dir);
  const clock = countingClock();
  const manager = new ServiceManager({
    paths,
    log,
    env: { ...process.env, ADI_TEST_TAG: tag },
    home: dir,
    clock,
    ...opts,
  });
  return {
    dir,
    paths,
    log,
    tag,
    manager,
    clock,
    writeServices(text: string) {
      fs.mkdirSync(paths.configDir, { recursive: true });
      fs.writeFileSync(paths.servicesFile, text);
    },
    async cleanup() {
      await manager.stopAll();
      // Belt and braces: a failing test must not leave processes behind for the next one.
      for (const pid of taggedPids(tag)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Live (non-zombie) processes whose environment holds ADI_TEST_TAG=<tag> (a zombie's reads empty). */
export function taggedPids(tag: string): number[] {
  return processIds().filter((pid) => environHas(pid, `ADI_TEST_TAG=${tag}`));
}

/** Whether a process exists and is not a zombie. */
export { isAlive };

export function waitState(
  manager: ServiceManager,
  name: string,
  state: ServiceInfo['state'],
  timeoutMs = 10_000,
): Promise<ServiceInfo> {
  return waitFor(
    () => {
      const info = manager.get(name);
      return info !== undefined && info.state === state ? info : undefined;
    },
    timeoutMs,
    `${name} to be ${state} (now ${JSON.stringify(manager.get(name))})`,
  );
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** The message text of each log line (`<time> <stream> <text>`). */
export function texts(lines: string[], stream?: 'out' | 'err' | 'sys'): string[] {
  const out: string[] = [];
  for (const line of lines) {
    const m = /^\S+ (out|err|sys) ?(.*)$/s.exec(line);
    if (m !== null && (stream === undefined || m[1] === stream)) out.push(m[2] ?? '');
  }
  return out;
}
