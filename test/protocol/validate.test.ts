import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AdiError } from '../../src/core/errors.js';
import type { Request, Response } from '../../src/protocol/types.js';
import { validateServiceConfig } from '../../src/protocol/config-schema.js';
import { parseRequest, parseResponse } from '../../src/protocol/validate.js';
import { decode, encode, encodeFrame } from '../../src/wire/codec.js';

const roundTrip = (value: unknown): unknown => decode(encode(value));

const VALID: Request[] = [
  { type: 'Hello', protocol: 1, client: 'test', token: 'abc' },
  { type: 'Ping' },
  { type: 'Shutdown', graceful: true },
  { type: 'StartService', name: 'hive', config: null },
  {
    type: 'StartService',
    name: 'web-1',
    config: {
      command: '/usr/bin/node',
      args: ['server.js', '--port', '8080'],
      env: { PORT: '8080' },
      working_dir: '/srv',
      restart_on_failure: true,
      max_restarts: 3,
      privileged: false,
      stop_timeout: 2.5,
      liveness: { http: 'http://127.0.0.1:8080/health', interval_secs: 5 },
    },
  },
  { type: 'StopService', name: 'hive', force: false },
  { type: 'RestartService', name: 'hive' },
  { type: 'ListServices' },
  { type: 'ServiceLogs', name: 'hive', lines: 100, follow: true, cursor: null },
  { type: 'Run', command: 'ls', args: ['-la'], timeout_secs: null, max_output_bytes: null },
  {
    type: 'SudoRun',
    command: 'iptables',
    args: ['-L'],
    reason: 'list rules',
    timeout_secs: null,
    max_output_bytes: null,
  },
  { type: 'Cancel', target: 7 },
  { type: 'Reload' },
];

/** Each request (with id 5) is refused with `code`, its id kept, and a message matching its pattern. */
function refusedWith(code: string, cases: [unknown, RegExp][]): void {
  for (const [value, message] of cases) {
    const parsed = parseRequest(roundTrip(value));
    assert.equal(parsed.ok, false);
    if (parsed.ok) continue;
    assert.equal(parsed.id, 5);
    assert.equal(parsed.error.code, code);
    assert.match(parsed.error.message, message);
  }
}

describe('parseRequest', () => {
  test('every request variant survives encode, decode and validation unchanged (a config gets its defaults)', () => {
    for (const [i, request] of VALID.entries()) {
      const parsed = parseRequest(roundTrip({ id: i + 1, ...request }));
      assert.ok(parsed.ok, `${request.type}: ${parsed.ok ? '' : parsed.error.message}`);
      assert.equal(parsed.id, i + 1);
      const expected =
        request.type === 'StartService' && request.config != null
          ? { ...request, config: validateServiceConfig(request.config).config }
          : request;
      assert.deepEqual(parsed.request, expected);
    }
  });

  test('wrong field types are BAD_REQUEST naming the field, with the id kept', () => {
    const cases: [unknown, RegExp][] = [
      [{ id: 5, type: 'Shutdown', graceful: 'yes' }, /Shutdown\.graceful must be a boolean/],
      [{ id: 5, type: 'StopService', name: 3, force: true }, /StopService\.name must be a string/],
      [{ id: 5, type: 'Run', command: 'ls', args: 'la' }, /Run\.args must be an array/],
      [{ id: 5, type: 'Run', command: 'ls', args: [1] }, /Run\.args\[0\] must be a string/],
      [{ id: 5, type: 'ServiceLogs', name: 'a', lines: -1, follow: false }, /lines must be between/],
    ];
    refusedWith('BAD_REQUEST', cases);
  });

  test('names that could reach a path are refused', () => {
    for (const name of ['../x', '/etc', 'a/b', '', '.hidden', 'UPPER', 'a\0b', 'x'.repeat(65), 'a..b']) {
      const parsed = parseRequest(roundTrip({ id: 1, type: 'StopService', name, force: false }));
      assert.equal(parsed.ok, false, name);
      if (!parsed.ok) assert.match(parsed.error.code, /BAD_SERVICE_NAME|BAD_REQUEST/);
    }
  });

  test('unknown request types are UNKNOWN_REQUEST; a missing id is reported without one', () => {
    const unknown = parseRequest(roundTrip({ id: 2, type: 'FormatDisk' }));
    assert.ok(!unknown.ok && unknown.error.code === 'UNKNOWN_REQUEST' && unknown.id === 2);
    const noId = parseRequest(roundTrip({ type: 'Ping' }));
    assert.ok(!noId.ok && noId.id === null);
    const bigId = parseRequest(roundTrip({ id: 2 ** 40, type: 'Ping' }));
    assert.ok(!bigId.ok && bigId.id === null);
  });

  test('any decoded value is either a valid request or a typed error; nothing throws', () => {
    fc.assert(
      fc.property(
        fc.anything({ withBigInt: true, withTypedArray: true, withNullPrototype: true, maxDepth: 4 }),
        (value) => {
          const parsed = parseRequest(value);
          if (!parsed.ok) assert.ok(parsed.error instanceof AdiError);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('requests built from valid shapes with random field values never throw', () => {
    const field = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string()),
      fc.dictionary(fc.string(), fc.string()),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...VALID.map((r) => r.type)),
        fc.dictionary(
          fc.constantFrom(
            'name',
            'force',
            'graceful',
            'args',
            'command',
            'config',
            'lines',
            'follow',
            'reason',
            'target',
            'protocol',
            'client',
            'token',
          ),
          field,
        ),
        (type, fields) => {
          const parsed = parseRequest(roundTrip({ id: 1, type, ...fields }));
          if (!parsed.ok) assert.ok(parsed.error instanceof AdiError);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('random bytes decode to an error or a value that validation handles', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        let value: unknown;
        try {
          value = decode(Buffer.from(bytes));
        } catch (err) {
          assert.ok(err instanceof AdiError && err.code === 'BAD_FRAME');
          return;
        }
        const parsed = parseRequest(value);
        if (!parsed.ok) assert.ok(parsed.error instanceof AdiError);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('StartService.config', () => {
  test('an invalid config is BAD_CONFIG naming every bad field, with the id kept', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { command: 'x', restart_on_failur: true },
        /^service "a": field "restart_on_failur": unknown field \(did you mean "restart_on_failure"\?\)/,
      ],
      [{ command: '' }, /field "command": must not be empty/],
      [{ command: 'x', liveness: {} }, /field "liveness": needs one of command, tcp or http/],
      [{ command: 'x', liveness: { tcp: 80, http: 'http://a' } }, /has tcp and http: give exactly one probe/],
      [
        { command: 'x', max_restarts: 'many', stop_timeout: -1 },
        /field "max_restarts": expected an integer from 0 to 1000, got a string "many"; field "stop_timeout"/,
      ],
      ['not a map' as unknown as Record<string, unknown>, /field "\(table\)": expected a table/],
    ];
    refusedWith(
      'BAD_CONFIG',
      cases.map(([config, message]) => [{ id: 5, type: 'StartService', name: 'a', config }, message]),
    );
  });

  test('nil fields are not given; a health check is normalised with its defaults', () => {
    const parsed = parseRequest(
      roundTrip({
        id: 1,
        type: 'StartService',
        name: 'a',
        config: { command: 'x', args: null, readiness: { tcp: 8080 } },
      }),
    );
    assert.ok(parsed.ok && parsed.request.type === 'StartService');
    assert.deepEqual(parsed.request.config?.args, []);
    assert.deepEqual(parsed.request.config?.readiness, {
      tcp: 8080,
      interval_secs: 1,
      timeout_secs: 5,
      failure_threshold: 3,
    });
  });

  test('a config with thousands of bad items lists 20 errors and how many more, not all of them', () => {
    const args = Array.from({ length: 4000 }, (_, i) => i);
    const parsed = parseRequest(roundTrip({ id: 1, type: 'StartService', name: 'a', config: { command: 'x', args } }));
    assert.ok(!parsed.ok);
    assert.equal(parsed.error.message.match(/field "args\[\d+\]"/g)?.length, 20);
    assert.match(parsed.error.message, /and 3980 more errors not listed$/);
  });
});

describe('parseResponse', () => {
  test('responses round-trip, binary fields as bytes', () => {
    const responses: Response[] = [
      { type: 'Pong', uptime_secs: 3, version: '0.1.0', pid: 42, protocol: 1, separation: false },
      {
        type: 'Pong',
        uptime_secs: 3,
        version: '0.1.0',
        pid: 42,
        protocol: 1,
        separation: true,
        plugin_socket: { state: 'failed', address: '@p', error: 'taken' },
        conflicts: ['service "x" belongs to plugin a; ...'],
      },
      { type: 'Ok' },
      { type: 'Error', code: 'SERVICE_NOT_FOUND', message: 'no' },
      {
        type: 'LogBatch',
        data: Buffer.from('a\0b\n\x1b[2J\n'),
        runs: [1714557600000, 0, 1, 1714557600001, 1, 1],
        cursor: '0123456789abcdef.1.2',
      },
      { type: 'StreamEnd' },
      { type: 'StreamEnd', cursor: '0123456789abcdef.1.2' },
      { type: 'CommandResult', exit_code: 0, stdout: Buffer.from([0, 255, 10]), stderr: Buffer.alloc(0), signal: null },
      { type: 'Error', code: 'SPAWN_FAILED', message: 'no', data: { errno: 'ENOENT' } },
      {
        type: 'Ok',
        service: {
          name: 'a',
          state: 'running',
          pid: 1,
          uptime_secs: 0,
          restarts: 0,
          last_error: null,
          exit_code: null,
          exit_signal: null,
          source: 'adhoc',
          cpu_percent: null,
          memory_bytes: null,
        },
      },
      {
        type: 'Services',
        list: [
          {
            name: 'a',
            state: 'running',
            pid: 1,
            uptime_secs: 2,
            restarts: 0,
            last_error: null,
            exit_code: null,
            exit_signal: null,
            source: 'adhoc',
            cpu_percent: null,
            memory_bytes: null,
          },
          {
            name: 'b',
            state: 'stopped',
            pid: null,
            uptime_secs: null,
            restarts: 0,
            last_error: null,
            exit_code: null,
            exit_signal: null,
            source: 'plugin',
            cpu_percent: null,
            memory_bytes: null,
            plugin: 'p',
            conflicts: ['service "b" belongs to plugin p; ...'],
          },
        ],
        conflicts: ['service "y": defined by plugin a and plugin b, and none of these definitions is loaded'],
      },
    ];
    for (const response of responses) {
      const { id, response: back } = parseResponse(roundTrip({ id: 9, ...response }));
      assert.equal(id, 9);
      if (back.type === 'CommandResult' && response.type === 'CommandResult') {
        assert.deepEqual([...back.stdout], [...response.stdout]);
      } else if (back.type === 'LogBatch' && response.type === 'LogBatch') {
        assert.deepEqual([...back.data], [...response.data]);
        assert.deepEqual(back.runs, response.runs);
      } else {
        assert.deepEqual(back, response);
      }
    }
  });

  test('the optional plugin socket: nil reads as absent, a bad state or a bad conflicts list is refused', () => {
    const pong = parseResponse(
      roundTrip({
        id: 1,
        type: 'Pong',
        uptime_secs: 3,
        version: '0.1.0',
        pid: 42,
        protocol: 1,
        separation: false,
        plugin_socket: null,
      }),
    ).response;
    assert.deepEqual(pong, { type: 'Pong', uptime_secs: 3, version: '0.1.0', pid: 42, protocol: 1, separation: false });
    assert.throws(
      () =>
        parseResponse(
          roundTrip({
            id: 3,
            type: 'Pong',
            uptime_secs: 3,
            version: '0.1.0',
            pid: 42,
            protocol: 1,
            plugin_socket: { state: 'odd' },
          }),
        ),
      /plugin_socket.state "odd" is unknown/,
    );
    assert.throws(
      () => parseResponse(roundTrip({ id: 4, type: 'Services', list: [], conflicts: [1] })),
      /Services.conflicts/,
    );
  });

  test('a frame over the maximum is refused when encoding', () => {
    assert.throws(
      () => encodeFrame({ id: 1, type: 'LogBatch', data: Buffer.alloc(2000), runs: [], cursor: '' }, 1000),
      /exceeds the maximum frame/,
    );
  });

  test('LogBatch runs must be [time, stream, count] triples', () => {
    for (const runs of [
      [1, 0],
      [1, 3, 1],
      ['t', 0, 1],
      [1, 0, -1],
      [1, 0, 0.5],
    ]) {
      assert.throws(
        () => parseResponse(roundTrip({ id: 1, type: 'LogBatch', data: Buffer.alloc(0), runs, cursor: 'c' })),
        (e: AdiError) => e.code === 'BAD_FRAME',
      );
    }
  });
});

describe('docs/protocol.md example', () => {
  test('a Ping frame is the bytes the spec shows', () => {
    assert.equal(
      encodeFrame({ id: 1, type: 'Ping' }, 1024).toString('hex'),
      '0f000000' + '82a26964' + '01a474797065a450696e67',
    );
  });
});
