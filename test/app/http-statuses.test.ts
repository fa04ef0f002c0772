// Every status the HTTP layer can send is application/problem+json: the ones
// Node's parser sends before Fastify sees the request (431, 414, 408, 400 for
// malformed requests) and the router's own (404, 405, 413, 415, 400 bad JSON,
// 503 while closing). Raw sockets: no HTTP client sends these requests.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { app as starforge, fastifyOptions } from '../../src/app.js';
import { MAX_URL_LENGTH } from '../../src/plugins/input-hygiene.js';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { listeningPort, rawExchange, requestBytes, type RawResponse } from '../support/raw-http.js';

let t: TestApp;
let port: number;
before(async () => {
  t = await startTestApp({ label: 'statuses' });
  port = await listeningPort(t.app);
});
after(() => t.close());

const AUTH = { authorization: bearer('root') };

function assertProblem(res: RawResponse, status: number, detail?: RegExp): Record<string, unknown> {
  assert.equal(res.status, status, `expected ${status}: ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/, `content-type of the ${status}`);
  const body = res.json();
  assert.equal(body.status, status);
  assert.match(String(body.type), /^https:\/\/starforge\.dev\/problems\//);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  if (detail) assert.match(String(body.detail), detail);
  return body;
}

const errorPaths = (body: Record<string, unknown>) => ((body.errors ?? []) as Array<{ path: string }>).map((e) => e.path);

describe("refused by Node's HTTP parser, before any route", () => {
  test('431: headers over 16 KiB', async () => {
    const res = await rawExchange(port, requestBytes({ method: 'GET', path: '/healthz', headers: { 'x-big': 'a'.repeat(20_000) } }));
    assertProblem(res, 431, /headers are larger/);
    assert.equal(res.headers.connection, 'close');
  });

  test('414: a URL over the limit, whether Node or the router sees it first', async () => {
    // 20 KiB: beyond Node's 16 KiB for the whole head; refused by the parser.
    assertProblem(await rawExchange(port, requestBytes({ method: 'GET', path: `/v1/runs?cursor=${'a'.repeat(20_000)}`, headers: AUTH })), 414);
    // 10 KiB: within Node's limit, over ours.
    const long = await rawExchange(port, requestBytes({ method: 'GET', path: `/v1/runs?cursor=${'a'.repeat(MAX_URL_LENGTH + 100)}`, headers: AUTH }));
    assertProblem(long, 414, new RegExp(`at most ${MAX_URL_LENGTH}`));
    // Before authentication: a stranger learns nothing more from it.
    assertProblem(await rawExchange(port, requestBytes({ method: 'GET', path: `/v1/runs?${'a'.repeat(MAX_URL_LENGTH + 100)}` })), 414);
    // Just under the limit is served (the cursor is then refused as a cursor, naming it).
    const under = await rawExchange(port, requestBytes({ method: 'GET', path: `/v1/runs?cursor=${'a'.repeat(90)}`, headers: AUTH }));
    assert.deepEqual(errorPaths(assertProblem(under, 400)), ['querystring/cursor']);
  });

  test('400: NUL or a control character in a header names the header', async () => {
    for (const value of [Buffer.from('a\0b'), Buffer.from('a\x01b'), Buffer.from('a\x1bb'), Buffer.from('a\x7fb')]) {
      const res = await rawExchange(port, requestBytes({ method: 'POST', path: '/v1/runs', headers: { ...AUTH, 'idempotency-key': value, 'content-type': 'application/json' }, body: '{}' }));
      assert.deepEqual(errorPaths(assertProblem(res, 400)), ['headers/idempotency-key'], res.text);
    }
  });

  test('400: malformed request lines, bad characters in the URL, an unknown HTTP version, CL with TE', async () => {
    for (const raw of ['HELLO\r\n\r\n', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n', 'GET / HTTP/9.1\r\nHost: x\r\n\r\n',
      'POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}']) {
      assertProblem(await rawExchange(port, raw), 400);
    }
  });

  test('408: a request that does not arrive within requestTimeout', async () => {
    const slow = Fastify({
      ...fastifyOptions(t.config, { logger: false }),
      requestTimeout: 300,
      // Node checks for timed-out requests on this interval (default 30 s).
      http: { connectionsCheckingInterval: 50 },
    } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
    await slow.register(starforge, { config: t.config });
    try {
      const slowPort = await listeningPort(slow);
      // The head of the request never completes (a slowloris).
      const res = await rawExchange(slowPort, `POST /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-`);
      assertProblem(res, 408);
    } finally {
      await slow.close();
    }
  });
});

describe("the router's own answers", () => {
  test('404 and 405 (with Allow) for unknown paths and methods; 401 first without a token', async () => {
    assertProblem(await rawExchange(port, requestBytes({ method: 'GET', path: '/v1/nothing-here', headers: AUTH })), 404);
    assertProblem(await rawExchange(port, requestBytes({ method: 'GET', path: '/nothing-here' })), 404);
    const del = await rawExchange(port, requestBytes({ method: 'DELETE', path: '/v1/runs', headers: AUTH }));
    assertProblem(del, 405, /DELETE is not served at \/v1\/runs/);
    assert.equal(del.headers.allow, 'GET, HEAD, POST');
    const put = await rawExchange(port, requestBytes({ method: 'PUT', path: '/v1/runs/00000000-0000-4000-8000-000000000000/approvals', headers: AUTH }));
    assertProblem(put, 405);
    assert.equal(put.headers.allow, 'POST');
    assertProblem(await rawExchange(port, requestBytes({ method: 'DELETE', path: '/v1/runs' })), 401);
    const health = await rawExchange(port, requestBytes({ method: 'POST', path: '/healthz' }));
    assertProblem(health, 405);
    assert.equal(health.headers.allow, 'GET, HEAD');
  });

  test('413: a body over 64 KiB, announced or chunked', async () => {
    const big = JSON.stringify({ environment: 'staging', description: 'x'.repeat(70 * 1024) });
    assertProblem(await rawExchange(port, requestBytes({ method: 'POST', path: '/v1/runs', headers: { ...AUTH, 'content-type': 'application/json' }, body: big })), 413);
    // Content-Length alone is enough: refused before the body is read.
    assertProblem(await rawExchange(port, `POST /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{`), 413);
    const chunk = Buffer.from(big);
    const chunked = `POST /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`
      + `${chunk.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`;
    assertProblem(await rawExchange(port, chunked), 413);
  });

  test('415 for other media types and JSON in another charset; 400 for bad JSON', async () => {
    const post = (type: string, body: string | Buffer) => rawExchange(port, requestBytes({ method: 'POST', path: '/v1/runs', headers: { ...AUTH, 'content-type': type }, body }));
    assertProblem(await post('text/plain', '{}'), 415);
    assertProblem(await post('application/xml', '<run/>'), 415);
    assertProblem(await post('application/json; charset=iso-8859-1', '{"environment":"staging","description":"x"}'), 415, /UTF-8/);
    assertProblem(await post('application/json; charset=utf-16', '{}'), 415);
    assertProblem(await post('application/json', '{"environment":'), 400, /not valid JSON/);
    assertProblem(await post('application/json', ''), 400);
    // A charset of utf-8, in any spelling, is fine (refused later for the missing field).
    for (const type of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"', 'application/json; charset=utf8']) {
      assert.deepEqual(errorPaths(assertProblem(await post(type, '{"environment":"staging"}'), 400)), ['body/description'], type);
    }
  });

  test('400 naming the field for a JSON body that is not UTF-8, at any depth', async () => {
    const post = (body: Buffer) => rawExchange(port, requestBytes({ method: 'POST', path: '/v1/runs', headers: { ...AUTH, 'content-type': 'application/json' }, body }));
    const bytes = (...parts: Array<string | number[]>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
    const cases: Array<[Buffer, string, RegExp]> = [
      [bytes('{"environment":"staging","description":"a', [0xc0, 0x80], '"}'), 'body/description', /overlong/],
      [bytes('{"environment":"staging","description":"ok","schedule":{"mode":"', [0xed, 0xa0, 0x80], '"}}'), 'body/schedule/mode', /surrogate/],
      [bytes('{"environment":"staging","description":"é中🚀 \\" , : { [","ticket":"', [0xff], '"}'), 'body/ticket', /never occurs/],
      [bytes('{"environment":"staging","descr', [0xe2, 0x82], 'iption":"x"}'), 'body', /field name/],
      [bytes('{"environment":"staging","description":"x","to":["a","b', [0x80], '"]}'), 'body/to/1', /continuation/],
    ];
    for (const [body, path, reason] of cases) {
      const problem = assertProblem(await post(body), 400);
      assert.deepEqual(errorPaths(problem), [path], problem.detail as string);
      assert.match(problem.detail as string, reason);
    }
  });

  test('503 problem+json for a request that arrives while the server closes', async () => {
    const closing: FastifyInstance = Fastify(fastifyOptions(t.config, { logger: false }));
    await closing.register(starforge, { config: t.config });
    const closingPort = await listeningPort(closing);
    const { connect } = await import('node:net');
    const socket = connect(closingPort, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d) => received.push(d));
    const ended = new Promise((resolve) => socket.on('close', resolve));
    // A first request is in flight (its body is not complete) when the server starts closing...
    socket.write(`POST /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{`);
    await new Promise((r) => setTimeout(r, 100));
    const closed = closing.close();
    await new Promise((r) => setTimeout(r, 100));
    // ...then its body and a second, pipelined request arrive.
    socket.write(`}GET /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\n\r\n`);
    await ended;
    await closed;
    const text = Buffer.concat(received).toString('utf8');
    const responses = text.split(/(?=HTTP\/1\.1 )/);
    assert.equal(responses.length, 2, text);
    assert.match(responses[0]!, /^HTTP\/1\.1 400 /, 'the request in flight is still answered');
    assert.match(responses[1]!, /^HTTP\/1\.1 503 /);
    assert.match(responses[1]!, /content-type: application\/problem\+json/i);
    assert.match(responses[1]!, /connection: close/i);
    assert.match(responses[1]!, /"status":503/);
  });
});
