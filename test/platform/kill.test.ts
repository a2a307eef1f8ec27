// killTree: on POSIX a real process group is ended with one kill(2); the Windows branch is checked by
// the taskkill command line it runs (spawner injected: there is no Windows here to run it on).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { killTree, taskkillArgs, type Spawner } from '../../src/platform/kill.js';
import { alive, waitFor } from '../helpers/env.js';

function fakeSpawner(exitCode: number | null, calls: Array<{ file: string; args: string[] }>, fail = false): Spawner {
  return (file, args) => {
    calls.push({ file, args });
    const child = new EventEmitter();
    setImmediate(() => (fail ? child.emit('error', new Error('ENOENT')) : child.emit('exit', exitCode)));
    return child as unknown as ReturnType<Spawner>;
  };
}

describe('killTree on Windows (taskkill)', () => {
  it('SIGKILL forces the whole tree: taskkill /T /F /PID', async () => {
    const calls: Array<{ file: string; args: string[] }> = [];
    assert.equal(await killTree(4242, 'SIGKILL', { platform: 'win32', spawn: fakeSpawner(0, calls) }), 'sent');
    assert.deepEqual(calls, [{ file: 'taskkill', args: ['/T', '/F', '/PID', '4242'] }]);
  });

  it('SIGTERM asks politely first (no /F); the stop timeout escalates', async () => {
    const calls: Array<{ file: string; args: string[] }> = [];
    await killTree(4242, 'SIGTERM', { platform: 'win32', spawn: fakeSpawner(0, calls) });
    assert.deepEqual(calls[0]?.args, ['/T', '/PID', '4242']);
    assert.deepEqual(taskkillArgs(7, 'SIGINT'), ['/T', '/PID', '7']);
  });

  it('maps taskkill results: 128 gone, 1 denied, spawn failure failed', async () => {
    const calls: Array<{ file: string; args: string[] }> = [];
    assert.equal(await killTree(5, 'SIGKILL', { platform: 'win32', spawn: fakeSpawner(128, calls) }), 'gone');
    assert.equal(await killTree(5, 'SIGKILL', { platform: 'win32', spawn: fakeSpawner(1, calls) }), 'denied');
    assert.equal(await killTree(5, 'SIGKILL', { platform: 'win32', spawn: fakeSpawner(null, calls, true) }), 'failed');
  });

  it('never targets pid 0, 1 or itself', async () => {
    const calls: Array<{ file: string; args: string[] }> = [];
    for (const pid of [0, 1, process.pid, -5, 1.5]) assert.equal(await killTree(pid, 'SIGKILL', { platform: 'win32', spawn: fakeSpawner(0, calls) }), 'failed');
    assert.equal(calls.length, 0);
  });
});

describe('killTree on POSIX (process group)', () => {
  it('signals -pgid', async () => {
    const sent: Array<[number, unknown]> = [];
    assert.equal(await killTree(300, 'SIGTERM', { platform: 'linux', kill: (pid, sig) => sent.push([pid, sig]) }), 'sent');
    assert.deepEqual(sent, [[-300, 'SIGTERM']]);
  });

  it('ends a real group: the leader and its child', async (t) => {
    if (process.platform === 'win32') {
      t.diagnostic('POSIX only');
      return;
    }
    // The leader starts a child in its group and prints the child's pid.
    const leader = spawn(process.execPath, ['-e', `
      const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
      console.log(c.pid); setInterval(() => {}, 1e9);`], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    leader.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await waitFor(() => out.includes('\n'), 10_000, 'the child pid');
    const child = Number(out.trim());
    assert.ok(alive(child));
    const reaped = new Promise((resolve) => leader.once('exit', resolve));
    assert.equal(await killTree(leader.pid as number, 'SIGKILL'), 'sent');
    await waitFor(() => !alive(child), 10_000, 'the child gone');
    // Once the leader is reaped (it is our child) and the child is gone, the group is empty.
    await reaped;
    await waitFor(async () => (await killTree(leader.pid as number, 0)) === 'gone', 10_000, 'an empty group');
  });
});
