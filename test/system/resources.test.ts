// Resource sampling, the pure parts: /proc and ps parsing, and CPU % from deltas between samples
// (with a scanner that returns given figures: the arithmetic, not the process table, is under test).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import {
  MIN_WINDOW_MS,
  ProcUsageScanner,
  ResourceSampler,
  parseAuxv,
  parseCpuTime,
  parsePsOutput,
  sumRuns,
  type ProcUsage,
  type UsageScanner,
} from '../../src/system/resources.js';
import { heldStatBudget, parseProcStat, parseStatBytes } from '../../src/system/proc.js';

class Given implements UsageScanner {
  procs: ProcUsage[] = [];
  scans = 0;
  scan(): ProcUsage[] {
    this.scans++;
    return this.procs;
  }
}

const proc = (
  pid: number,
  pgid: number,
  cpuSecs: number,
  rssBytes: number,
  marker: string | null = null,
): ProcUsage => ({ pid, pgid, marker, cpuSecs, rssBytes });

describe('resource parsing', () => {
  it('reads group, ticks (own and reaped children) and rss from /proc/<pid>/stat, whatever the name holds', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
    const fields = [
      'S',
      '1',
      '4242',
      '4242',
      '0',
      '-1',
      '0',
      '0',
      '0',
      '0',
      '0',
      '150',
      '50',
      '7',
      '3',
      '20',
      '0',
      '1',
      '0',
      '9999',
      '123456',
      '2500',
    ];
    const s = parseProcStat(`4242 (we ird) (name) ${fields.join(' ')} 0 0`);
    assert.deepEqual(s, { state: 'S', ppid: 1, pgid: 4242, ticks: 210, starttime: 9999, rssPages: 2500 });
    assert.equal(parseProcStat('garbage'), null);
  });

  it('parses the bytes read (no string made) and refuses a line that is cut short or not numeric', () => {
    const fields = [
      'R',
      '1',
      '77',
      '77',
      '0',
      '-1',
      '4194560',
      '0',
      '0',
      '0',
      '0',
      '12',
      '3',
      '0',
      '0',
      '20',
      '0',
      '1',
      '0',
      '555',
      '999',
      '-5',
      '18446744073709551615',
    ];
    const line = Buffer.from(`77 (a) b) ${fields.join(' ')}\n`);
    assert.deepEqual(parseStatBytes(line, line.length), {
      state: 'R',
      ppid: 1,
      pgid: 77,
      ticks: 15,
      starttime: 555,
      rssPages: 0,
    });
    const cut = Buffer.from(`77 (a) ${fields.slice(0, 18).join(' ')}`);
    assert.equal(parseStatBytes(cut, cut.length), null);
    const odd = Buffer.from(`77 (a) ${fields.join(' ').replace(' 12 ', ' 1x ')}`);
    assert.equal(parseStatBytes(odd, odd.length), null);
    // Only the bytes read count, whatever the buffer holds after them.
    assert.equal(parseStatBytes(line, line.indexOf(' 555 ')), null);
  });

  it('keeps at most an eighth of the open-file limit of stat files open, and no more than 4096', () => {
    assert.equal(
      heldStatBudget(
        'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n',
      ),
      128,
    );
    assert.equal(heldStatBudget('Max open files            1048576              1048576              files\n'), 4096);
    assert.equal(heldStatBudget(null), 128);
  });

  it('finds the page size and clock ticks in an auxv vector', () => {
    const v = Buffer.alloc(16 * 4);
    [
      [6n, 16384n],
      [17n, 100n],
      [0n, 0n],
    ].forEach(([t, val], i) => {
      v.writeBigUInt64LE(t as bigint, i * 16);
      v.writeBigUInt64LE(val as bigint, i * 16 + 8);
    });
    assert.deepEqual(parseAuxv(v, 8), { pageSize: 16384, clockTicks: 100 });
  });

  it('parses ps cputime and output (macOS)', () => {
    assert.equal(parseCpuTime('0:01.50'), 1.5);
    assert.equal(parseCpuTime('12:00.00'), 720);
    assert.equal(parseCpuTime('1:00:00'), 3600);
    assert.equal(parseCpuTime('2-00:00:01'), 172_801);
    assert.equal(parseCpuTime('x'), null);
    assert.deepEqual(parsePsOutput('  100   100   2048   0:01.00\n  101 100 1024 1:00.00\nbad line\n'), [
      proc(100, 100, 1, 2048 * 1024),
      proc(101, 100, 60, 1024 * 1024),
    ]);
  });

  it('sums a run by its group and by its marker (a double-forked child outside the group)', () => {
    const procs = [
      proc(10, 10, 1, 100),
      proc(11, 10, 2, 100),
      proc(20, 20, 4, 100, 'm1'),
      proc(30, 30, 8, 100, 'other'),
    ];
    assert.deepEqual(sumRuns(procs, [{ pgid: 10, marker: 'm1', started_at: 0 }]), {
      cpuSecs: 7,
      rssBytes: 300,
      count: 3,
    });
  });

  it('the /proc scanner sees a live child with its group and a positive rss', async () => {
    if (process.platform !== 'linux') return;
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    try {
      const scanner = new ProcUsageScanner();
      const me = scanner.scan().find((p) => p.pid === child.pid);
      scanner.close();
      assert.ok(me, 'child found');
      assert.equal(me.pgid, child.pid);
      assert.ok(me.rssBytes > 1024 * 1024);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('the /proc scanner reads fresh figures through the stat files it keeps open, and closes those of processes that are gone', async () => {
    if (process.platform !== 'linux') return;
    // Busy for 3 s, then idle: its CPU time grows between scans.
    const child = spawn(
      process.execPath,
      ['-e', 'const end = Date.now() + 3000; while (Date.now() < end); setInterval(() => {}, 1000)'],
      { detached: true, stdio: 'ignore' },
    );
    await new Promise((r) => child.once('spawn', r));
    const pid = child.pid as number;
    const statFile = `/proc/${pid}/stat`;
    const held = (): number =>
      fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`) === statFile;
        } catch {
          return false;
        }
      }).length;
    const scanner = new ProcUsageScanner();
    const unheld = new ProcUsageScanner(0);
    try {
      const first = scanner.scan().find((p) => p.pid === pid);
      assert.ok(first);
      assert.equal(held(), 1, 'its stat file is kept open');
      // The same open file, read again, shows the time used since (bounded wait: a loaded machine is slow).
      const deadline = Date.now() + 5000;
      let later = first;
      while (later.cpuSecs < first.cpuSecs + 0.05 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        later = scanner.scan().find((p) => p.pid === pid) ?? later;
      }
      assert.ok(later.cpuSecs >= first.cpuSecs + 0.05, `cpu ${first.cpuSecs} → ${later.cpuSecs}`);
      assert.equal(held(), 1, 'still the one file');
      // Without open files (no budget) it finds the same process, with the same or later figures.
      const plain = unheld.scan().find((p) => p.pid === pid);
      assert.ok(plain);
      assert.equal(plain.pgid, pid);
      assert.ok(plain.cpuSecs >= later.cpuSecs && plain.rssBytes > 0);
      assert.equal(held(), 1);

      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      assert.equal(
        scanner.scan().find((p) => p.pid === pid),
        undefined,
      );
      assert.equal(held(), 0, 'the stat file of a process that is gone is closed');
    } finally {
      child.kill('SIGKILL');
      scanner.close();
    }
  });
});

describe('ResourceSampler', () => {
  const runs = [{ pgid: 10, marker: 'run-1', started_at: 0 }];

  it('first sample: the average over the run; then the use between samples', () => {
    const scanner = new Given();
    const sampler = new ResourceSampler(scanner);
    scanner.procs = [proc(10, 10, 5, 1000)];
    // 5 s of CPU in 10 s of life: 50 %.
    assert.deepEqual(sampler.sample([{ name: 'a', runs }], 10_000).get('a'), { cpu_percent: 50, memory_bytes: 1000 });
    scanner.procs = [proc(10, 10, 6, 2000)];
    // 1 s more in 2 s: 50 %; memory is always the current figure.
    assert.deepEqual(sampler.sample([{ name: 'a', runs }], 12_000).get('a'), { cpu_percent: 50, memory_bytes: 2000 });
    scanner.procs = [proc(10, 10, 6, 2000)];
    assert.equal(sampler.sample([{ name: 'a', runs }], 14_000).get('a')?.cpu_percent, 0);
  });

  it('a window shorter than the minimum repeats the last figure instead of measuring noise', () => {
    const scanner = new Given();
    const sampler = new ResourceSampler(scanner);
    scanner.procs = [proc(10, 10, 1, 1)];
    sampler.sample([{ name: 'a', runs }], 10_000);
    scanner.procs = [proc(10, 10, 3, 1)];
    assert.equal(sampler.sample([{ name: 'a', runs }], 12_000).get('a')?.cpu_percent, 100);
    scanner.procs = [proc(10, 10, 3.05, 1)];
    assert.equal(sampler.sample([{ name: 'a', runs }], 12_000 + MIN_WINDOW_MS - 1).get('a')?.cpu_percent, 100);
  });

  it('CPU time that vanished (a child reaped elsewhere) reads as 0, not negative; a new run starts afresh', () => {
    const scanner = new Given();
    const sampler = new ResourceSampler(scanner);
    scanner.procs = [proc(10, 10, 9, 1), proc(11, 10, 9, 1)];
    sampler.sample([{ name: 'a', runs }], 10_000);
    scanner.procs = [proc(10, 10, 9, 1)];
    assert.equal(sampler.sample([{ name: 'a', runs }], 11_000).get('a')?.cpu_percent, 0);
    // Restarted: another marker, its own lifetime average.
    scanner.procs = [proc(50, 50, 1, 1)];
    assert.equal(
      sampler.sample([{ name: 'a', runs: [{ pgid: 50, marker: 'run-2', started_at: 10_000 }] }], 12_000).get('a')
        ?.cpu_percent,
      50,
    );
  });

  it('stopped services get nulls, and nothing is scanned when none runs', () => {
    const scanner = new Given();
    const sampler = new ResourceSampler(scanner);
    assert.deepEqual(sampler.sample([{ name: 'a', runs: [] }]).get('a'), { cpu_percent: null, memory_bytes: null });
    assert.equal(scanner.scans, 0);
    // Runs listed but no process found (just exited): unknown too.
    assert.deepEqual(sampler.sample([{ name: 'a', runs }]).get('a'), { cpu_percent: null, memory_bytes: null });
    // No way to measure on this platform.
    assert.deepEqual(new ResourceSampler(null).sample([{ name: 'a', runs }]).get('a'), {
      cpu_percent: null,
      memory_bytes: null,
    });
  });
});
