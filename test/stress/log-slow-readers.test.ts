// Slow readers cost bounded memory and slow nobody. A service floods its log (`yes`); then 100
// followers whose processes are SIGSTOPped (their sockets fill, they never read), 100 active followers,
// and a client that asks for a million-line follow and never reads. Measured from outside: the
// flood's capture rate with the paused followers against the same service alone, the daemon's RSS
// (sampled throughout) against the documented ceiling, the ping latency of a well-behaved client, and
// the RSS once everyone has left against the RSS before they came.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DaemonClient } from '../../src/client/client.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import { tempHome, waitFor, type TempHome } from '../helpers/env.js';
import { environOf } from '../helpers/proc.js';
import { RawPeer } from '../helpers/raw.js';
import { daemonLog, rssKb, settleAtMost, startDaemon } from './helpers.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'log-follower-worker.js');
/** The daemon's RSS ceiling under misbehaving followers, as docs/reliability.md states it. */
const RSS_CEILING_MB = 160;
/** What the daemon may keep, over its RSS before the followers came, once they have all left. */
const RETURN_MB = 60;
/** What the flood alone may add to the daemon's RSS. */
const FLOOD_ALONE_MB = 20;
const SEGMENT = 4 * 1024 * 1024;
let h: TempHome;
let pid: number;
const workers: ChildProcess[] = [];

before(async () => {
  h = tempHome();
  fs.mkdirSync(h.paths.configDir, { recursive: true });
  fs.writeFileSync(
    h.paths.servicesFile,
    `[flood]\ncommand = "yes"\nargs = ["flood line 0123456789 abcdefghijklmnopqrstuvwxyz"]\nauto_start = true\nlog_max_bytes = ${SEGMENT}\nlog_max_files = 2\n`,
  );
  pid = await startDaemon(h);
});
after(async () => {
  for (const w of workers) {
    try {
      w.kill('SIGCONT');
      w.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  await h.cleanup();
});

/** Bytes the flood has written so far: whole segments before the live one, plus the live one's size. */
function captured(): number {
  for (;;) {
    try {
      const segment = fs.readFileSync(`${h.paths.logsDir}/flood.idx`).readDoubleLE(8);
      // A segment is rotated when its data and index would pass SEGMENT: its data is a little less.
      return (segment - 1) * SEGMENT + fs.statSync(`${h.paths.logsDir}/flood.log`).size;
    } catch {
      // Caught between a rotation's rename and the new segment's header: look again.
    }
  }
}

/** The better of three capture rates over `ms` each: other load on the machine only ever lowers one. */
async function bestRate(ms: number): Promise<number> {
  return Math.max(await rate(ms), await rate(ms), await rate(ms));
}

/** Capture rate in MB/s over `ms`. */
async function rate(ms: number): Promise<number> {
  const b0 = captured();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, ms));
  return (captured() - b0) / 1024 / 1024 / ((Date.now() - t0) / 1000);
}

function startWorker(count: number): Promise<ChildProcess> {
  const w = spawn(process.execPath, [WORKER, 'flood', String(count)], {
    env: h.env,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  workers.push(w);
  return new Promise((resolve, reject) => {
    let out = '';
    w.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) resolve(w);
    });
    w.once('exit', (code) => reject(new Error(`follower worker exited with ${code}`)));
  });
}

function report(w: ChildProcess): Promise<{ lines: number; bytes: number; errors: string[] }> {
  return new Promise((resolve) => {
    let out = '';
    const onData = (d: string): void => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) {
        w.stdout?.off('data', onData);
        resolve(JSON.parse(line) as { lines: number; bytes: number; errors: string[] });
      }
    };
    w.stdout?.on('data', onData);
    w.stdin?.write('report\n');
  });
}

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number;
}

describe('slow log readers', () => {
  test('100 paused and 100 active followers and a client that never reads: bounded RSS, pings answered, the flood not slowed', async (t) => {
    await waitFor(() => fs.existsSync(`${h.paths.logsDir}/flood.idx`), 10_000, 'the flood to start');
    // The allocator setting is the daemon's own (src/client/spawn.ts): its services do not inherit it.
    const setup = new DaemonClient({ env: h.env });
    const floodPid = (await setup.listServices()).find((s) => s.name === 'flood')?.pid ?? 0;
    setup.close();
    assert.equal(environOf(pid).MALLOC_MMAP_THRESHOLD_, h.env.MALLOC_MMAP_THRESHOLD_ ?? '65536');
    assert.ok(floodPid > 0);
    assert.equal(environOf(floodPid).MALLOC_MMAP_THRESHOLD_, h.env.MALLOC_MMAP_THRESHOLD_);
    assert.equal(environOf(floodPid).ADI_DAEMON_ONLY_ENV, undefined);
    const base = rssKb(pid);
    let maxRss = rssKb(pid);
    const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssKb(pid))), 20);
    const alone = await bestRate(1000);
    const aloneRss = maxRss;
    const pinger = new DaemonClient({ env: h.env });
    // Hello first: a connection that never says Hello is closed at the handshake timeout.
    await pinger.daemonVersion();
    const latencies: number[] = [];
    const pingErrors: string[] = [];
    let pinging = true;
    const pings = (async () => {
      while (pinging) {
        const t0 = process.hrtime.bigint();
        try {
          await pinger.ping();
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        } catch (err) {
          pingErrors.push(String(err));
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    let never: RawPeer | null = null;
    try {
      // 100 followers, then stopped: from here on they never read.
      const paused = await Promise.all([startWorker(50), startWorker(50)]);
      for (const w of paused) w.kill('SIGSTOP');
      const withPaused = await bestRate(1000);

      // A client that asks for a million lines and more, and never reads any of them.
      never = await RawPeer.connect(h.paths.socket);
      never.socket.pause();
      never.send({
        id: 0,
        type: 'Hello',
        protocol: PROTOCOL_VERSION,
        client: 'never-reads',
        token: fs.readFileSync(h.paths.tokenFile, 'utf8'),
      });
      never.send({ id: 1, type: 'ServiceLogs', name: 'flood', lines: 1_000_000, follow: true });
      // 100 active followers on top.
      const active = await Promise.all([startWorker(50), startWorker(50)]);
      const pingsBefore = latencies.length;
      const withAll = await rate(4000);
      const reports = await Promise.all(active.map(report));
      const underLoad = latencies.slice(pingsBefore);

      pinging = false;
      await pings;
      clearInterval(sampler);
      const received = reports.reduce((n, r) => n + r.bytes, 0) / 1024 / 1024;
      t.diagnostic(
        `flood alone ${alone.toFixed(1)} MB/s; with 100 paused followers ${withPaused.toFixed(1)} MB/s; with 100 paused + 100 active + 1 never-reading ${withAll.toFixed(1)} MB/s (the active ones received ${received.toFixed(0)} MB)`,
      );
      t.diagnostic(
        `daemon RSS ${Math.round(base / 1024)} MB before, at most ${Math.round(aloneRss / 1024)} MB with the flood alone, at most ${Math.round(maxRss / 1024)} MB with the followers (ceiling ${RSS_CEILING_MB} MB)`,
      );
      t.diagnostic(
        `ping under load: ${underLoad.length} pings, p99 ${p99(underLoad).toFixed(1)} ms, max ${Math.max(...underLoad).toFixed(1)} ms`,
      );
      assert.deepEqual(pingErrors, []);
      for (const r of reports) assert.deepEqual(r.errors, []);
      assert.ok(received > 0, 'the active followers got lines');
      // A paused follower never blocks capture: the failure this guards against slowed the flood 20-fold.
      assert.ok(
        withPaused > alone * 0.5,
        `the flood went from ${alone.toFixed(1)} to ${withPaused.toFixed(1)} MB/s with paused followers`,
      );
      // The target is 50 ms (docs/reliability.md records the measured p99); the test allows twice that,
      // as other test suites share this machine's two cores. The failure it guards against was 9.4 s.
      assert.ok(p99(underLoad) < 100, `ping p99 ${p99(underLoad).toFixed(1)} ms`);
    } catch (err) {
      t.diagnostic(`daemon log: ${daemonLog(h).split('\n').slice(-10).join('\n')}`);
      throw err;
    } finally {
      pinging = false;
      await pings;
      clearInterval(sampler);
      pinger.close();
      never?.close();
      for (const w of workers) {
        w.kill('SIGCONT');
        w.kill('SIGKILL');
      }
    }
    // Everyone has left: what they cost is given back (docs/reliability.md). Without the daemon's
    // allocator setting and its collections after the burst (src/logs/reclaim.ts), RSS stayed at the
    // high water, 117-141 MB from a base of 53-63 MB.
    const c = new DaemonClient({ env: h.env });
    await c.stopService('flood');
    c.close();
    // Given up to 5 s to get within 40 MB (the collections run 1 s after the last stream ended), then
    // held to RETURN_MB.
    const after = await settleAtMost(() => rssKb(pid), base + 40 * 1024, 5_000);
    t.diagnostic(
      `daemon RSS after every follower left and the flood stopped: ${Math.round(after / 1024)} MB (${Math.round(base / 1024)} MB before)`,
    );
    assert.ok(maxRss / 1024 < RSS_CEILING_MB, `daemon RSS reached ${Math.round(maxRss / 1024)} MB`);
    // The flood's pipe reads are collected as it goes (src/logs/reclaim.ts), not left to pile up: it
    // went from a base of 53-58 MB to 60-62 MB with them, to 88-90 MB without.
    assert.ok(
      aloneRss < base + FLOOD_ALONE_MB * 1024,
      `RSS ${Math.round(base / 1024)} -> ${Math.round(aloneRss / 1024)} MB with the flood alone (allowed: ${FLOOD_ALONE_MB} MB more)`,
    );
    assert.ok(
      after < base + RETURN_MB * 1024,
      `RSS ${Math.round(base / 1024)} -> ${Math.round(after / 1024)} MB 5 s after the followers left (allowed: ${RETURN_MB} MB more)`,
    );
  });
});
