// `--compare`: the same work on supervisord, when `supervisord` is on PATH (it is never installed by
// the benchmark). A private config in the benchmark's temporary HOME: its own socket, logs and
// programs (the crash-to-restart fixtures and N sleepers). RPC is supervisord's XML-RPC over its Unix
// socket, timed from Node like the daemon's; the CLI figure is `supervisorctl pid`.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { nodeFloorMs } from './cli.js';
import type { CompareOptions } from './compare-pm2.js';
import { EchoClient, echoFrame } from './echo-baseline.js';
import type { Harness } from './harness.js';
import { rssBytes } from './proc.js';
import { killAndTimeRestart, stampCommand, waitForStamp, type StampKind } from './restart.js';
import { alternate, median, quantile, sleep, timed, timeEach, waitUntil } from './stats.js';
import type { Row } from './table.js';

function onPath(name: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** supervisord splits `command` with shlex: quote each word for it. */
function shellWords(words: string[]): string {
  return words.map((w) => `'${w.replace(/'/g, `'"'"'`)}'`).join(' ');
}

class XmlRpc {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  constructor(private readonly socketPath: string) {}

  call(method: string): Promise<string> {
    const body = `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params></params></methodCall>`;
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          path: '/RPC2',
          method: 'POST',
          agent: this.agent,
          headers: { 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () =>
            res.statusCode === 200 ? resolve(text) : reject(new Error(`${method}: HTTP ${res.statusCode}`)),
          );
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`${method}: timeout`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export async function compareSupervisord(h: Harness, opts: CompareOptions): Promise<Row[]> {
  const supervisord = onPath('supervisord');
  const supervisorctl = onPath('supervisorctl');
  if (supervisord === null || supervisorctl === null) {
    return [
      {
        group: 'supervisord',
        metric: 'not measured: supervisord is not on PATH',
        value: NaN,
        unit: 'ms',
        baselineLabel: null,
        baseline: null,
        target: null,
      },
    ];
  }
  const dir = path.join(h.home, 'supervisord');
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const sock = path.join(dir, 's.sock');
  const conf = path.join(dir, 'supervisord.conf');
  const pidFile = path.join(dir, 'supervisord.pid');
  const n = opts.counts.compareServices;
  const stamp = (kind: StampKind): string => path.join(h.scratch, `sv-stamp-${kind}`);
  const program = (name: string, words: string[], extra = ''): string =>
    `[program:${name}]\ncommand=${shellWords(words)}\nautostart=true\nautorestart=true\nstartsecs=0\nstartretries=1000\nstopsignal=KILL\n${extra}`;
  const bin = stampCommand('binary', stamp('binary'));
  const node = stampCommand('node', stamp('node'));
  fs.writeFileSync(
    conf,
    [
      `[unix_http_server]\nfile=${sock}\nchmod=0700\n`,
      `[supervisord]\nlogfile=${path.join(dir, 'supervisord.log')}\npidfile=${pidFile}\nchildlogdir=${path.join(dir, 'logs')}\nloglevel=warn\n`,
      `[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n`,
      `[supervisorctl]\nserverurl=unix://${sock}\n`,
      program('crash-bin', [bin.command, ...bin.args]),
      program('crash-node', [node.command, ...node.args]),
      program('sl', ['/bin/sleep', '100000'], `numprocs=${n}\nprocess_name=%(program_name)s-%(process_num)04d\n`),
    ].join('\n'),
  );
  const ctl = (args: string[]): Promise<{ code: number | null; ms: number }> =>
    h.run(supervisorctl, ['-c', conf, ...args], { capture: false });
  h.onCleanup(async () => {
    await ctl(['shutdown']).catch(() => undefined);
    try {
      process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // gone
    }
  });
  const version = (await h.run(supervisord, ['--version'])).stdout.trim();
  const group = `supervisord ${version}`;
  const started = await h.run(supervisord, ['-c', conf]);
  if (started.code !== 0)
    return [
      {
        group,
        metric: `not measured: supervisord failed to start: ${started.stderr.trim()}`,
        value: NaN,
        unit: 'ms',
        baselineLabel: null,
        baseline: null,
        target: null,
      },
    ];
  await waitUntil(() => fs.existsSync(pidFile) && fs.existsSync(sock), 15_000, 'supervisord to listen');
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  const rpc = new XmlRpc(sock);
  const echo = await EchoClient.connect(opts.echoSocket);
  const rows: Row[] = [];
  try {
    opts.say(`supervisord: waiting for ${n + 2} programs to run`);
    await waitUntil(
      async () =>
        ((await rpc.call('supervisor.getAllProcessInfo')).match(/<string>RUNNING<\/string>/g) ?? []).length >= n + 2,
      180_000,
      'supervisord programs',
      200,
    );
    await waitForStamp('binary', stamp('binary'), 1);
    await waitForStamp('node', stamp('node'), 1);

    const rpcLat = (method: string, count: number): Promise<number[]> => timeEach(count, () => rpc.call(method));
    const echoLat = (frame: Buffer, count: number): Promise<number[]> => timeEach(count, () => echo.roundTrip(frame));
    const small = echoFrame(64);
    await rpcLat('supervisor.getState', 50);
    // supervisord is slow per call: a tenth of the daemon's sample count keeps this section short.
    const per = Math.max(20, Math.round(opts.counts.pingSamples / 10));
    const [svLat, eLat] = await alternate<number[]>(opts.counts.pingRounds, [
      () => rpcLat('supervisor.getState', per),
      () => echoLat(small, per),
    ]);
    rows.push({
      group,
      metric: 'RPC ping p50 (XML-RPC supervisor.getState)',
      value: quantile((svLat ?? []).flat(), 0.5),
      unit: 'us',
      baselineLabel: 'raw echo p50',
      baseline: quantile((eLat ?? []).flat(), 0.5),
      target: null,
    });
    rows.push({
      group,
      metric: 'RPC ping p99',
      value: quantile((svLat ?? []).flat(), 0.99),
      unit: 'us',
      baselineLabel: 'raw echo p99',
      baseline: quantile((eLat ?? []).flat(), 0.99),
      target: null,
    });

    opts.say('supervisord: `supervisorctl pid` wall time');
    const ctlPid = async (): Promise<number> => {
      const r = await ctl(['pid']);
      if (r.code !== 0) throw new Error(`supervisorctl pid exited ${r.code}`);
      return r.ms;
    };
    await ctlPid();
    const [ctlMs, floorMs] = await alternate<number>(opts.counts.cliRuns, [ctlPid, () => nodeFloorMs(h)]);
    rows.push({
      group,
      metric: '`supervisorctl pid` wall time',
      value: median(ctlMs ?? []),
      unit: 'ms',
      baselineLabel: '`node -e 0`',
      baseline: median(floorMs ?? []),
      target: null,
      note: `median of ${opts.counts.cliRuns}`,
    });

    opts.say('supervisord: crash-to-restart');
    for (const kind of ['binary', 'node'] as StampKind[]) {
      const samples: number[] = [];
      // supervisord restarts in about a second; fewer samples keep the section bounded.
      const count = Math.min(opts.counts.restartSamples, 7);
      for (let i = 0; i < count; i++) {
        samples.push(await killAndTimeRestart(kind, stamp(kind)));
        // Past startsecs, so each kill is of a RUNNING process, i.e. a first crash.
        await sleep(1100);
      }
      rows.push({
        group,
        metric: `crash → restart, ${kind === 'binary' ? 'plain binary' : 'Node.js service'}`,
        value: median(samples),
        unit: 'ms',
        baselineLabel: 'spawn floor',
        baseline: opts.floors[kind],
        target: null,
        note: `median of ${count}`,
      });
    }

    const info = await rpc.call('supervisor.getAllProcessInfo');
    const listFrame = echoFrame(Buffer.byteLength(info));
    const [listMs, rawMs] = await alternate<number>(opts.counts.listSamples, [
      () => timed(() => rpc.call('supervisor.getAllProcessInfo')),
      () => timed(() => echo.roundTrip(listFrame)),
    ]);
    rows.push({
      group,
      metric: `getAllProcessInfo round trip, ${n + 2} processes`,
      value: median(listMs ?? []),
      unit: 'ms',
      baselineLabel: `raw echo of ${Math.round(listFrame.length / 1024)} KiB`,
      baseline: median(rawMs ?? []),
      target: null,
      note: `median of ${opts.counts.listSamples}`,
    });
    rows.push({
      group,
      metric: `supervisord RSS, ${n + 2} processes`,
      value: rssBytes(pid) / 2 ** 20,
      unit: 'MB',
      baselineLabel: 'idle `node`',
      baseline: opts.idleNodeMB,
      target: null,
    });
  } finally {
    echo.close();
    rpc.close();
    await ctl(['shutdown']).catch(() => undefined);
  }
  return rows;
}
