// GET /v1/events/stream: server-sent audit events on real PostgreSQL, read
// over a real socket. Events are written through the API or straight into
// run_events (as another replica or a transaction still open would).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { bearer, startTestApp, tokenOf, type TestApp } from '../support/app.js';
import { baseUrl, openStream, type OpenStream } from '../support/sse.js';
import { assertProblem } from '../runs/helpers.js';

let t: TestApp;
let url: string;
const streams: OpenStream[] = [];

async function stream(who: Parameters<typeof tokenOf>[0] | null, opts: Parameters<typeof openStream>[2] = {}, target = url): Promise<OpenStream> {
  const s = await openStream(target, who ? tokenOf(who) : null, opts);
  streams.push(s);
  return s;
}

async function insertEvent(environment = 'staging', type = 'test.event', details: object = {}): Promise<number> {
  const res = await t.control.query(`INSERT INTO run_events (run_id, environment, type, actor, details) VALUES (NULL, $1, $2, 'test', $3) RETURNING id`, [environment, type, JSON.stringify(details)]);
  return Number(res.rows[0].id);
}

const isEvent = (id: number) => (f: { id?: string; event?: string }) => f.event === 'run-event' && f.id === String(id);
const ids = (s: OpenStream) => s.events().map((e) => e.id);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  t = await startTestApp({ label: 'sse', env: { EVENTS_POLL_MS: '50', EVENT_STREAM_HEARTBEAT_SECONDS: '1', EVENT_STREAMS_PER_SUBJECT: '3' } });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  url = baseUrl(t);
});

afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  // Until the server has seen the disconnects, their slots are taken.
  for (let i = 0; i < 50 && t.app.services.events.open > 0; i++) await sleep(50);
});

after(async () => {
  await t.close();
});

describe('event stream: access and input', () => {
  test('no token: 401 problem+json, no stream opened', async () => {
    const s = await stream(null);
    assert.equal(s.status, 401);
    assert.match(s.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(JSON.parse(s.text!).status, 401);
    assert.equal(t.app.services.events.open, 0);
  });

  test('unknown environment 400, malformed run 400, unknown run 404, bad Last-Event-ID 400: all problem+json', async () => {
    const http = t.http();
    assertProblem(await http.get('/v1/events/stream?environment=nope').set('authorization', bearer('vic')), 400, /Unknown environment/);
    assertProblem(await t.http().get('/v1/events/stream?run=not-a-uuid').set('authorization', bearer('vic')), 400);
    assertProblem(await t.http().get('/v1/events/stream?run=00000000-0000-4000-8000-000000000000').set('authorization', bearer('vic')), 404, /does not exist/);
    assertProblem(await t.http().get('/v1/events/stream').set('authorization', bearer('vic')).set('last-event-id', '12abc'), 400, /Last-Event-ID/);
    assertProblem(await t.http().get('/v1/events/stream?color=red').set('authorization', bearer('vic')), 400);
    assert.equal(t.app.services.events.open, 0, 'refused requests hold no stream slot');
  });
});

describe('event stream: delivery', () => {
  test('text/event-stream with retry, heartbeats, and each new event as the API shows it, in id order', async () => {
    const s = await stream('vic');
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(s.headers.get('cache-control'), 'no-store');
    assert.ok(s.headers.get('x-request-id'));
    await s.waitFor((f) => f.retry === 3000, 2000, 'the retry field');
    await s.waitFor((f) => f.comment === 'heartbeat', 4000, 'a heartbeat comment');
    const a = await insertEvent('staging', 'test.a', { n: 1 });
    const b = await insertEvent('production', 'test.b', { text: 'line one\nline two' });
    await s.waitFor(isEvent(b), 5000, `event ${b}`);
    const got = s.events().filter((e) => e.id >= a);
    assert.deepEqual(got.map((e) => e.id), [a, b]);
    assert.deepEqual(got[1]!.data, { id: b, runId: null, environment: 'production', type: 'test.b', actor: 'test', from: null, to: null, details: { text: 'line one\nline two' }, at: got[1]!.data.at });
    assert.match(String(got[1]!.data.at), /^\d{4}-\d{2}-\d{2}T/);
  });

  test('environment and run filters', async () => {
    const staging = await stream('vic', { query: { environment: 'staging' } });
    const production = await stream('vic', { query: { environment: 'production' } });
    await staging.waitFor((f) => f.retry !== undefined);
    await production.waitFor((f) => f.retry !== undefined);
    const s1 = await insertEvent('staging');
    const p1 = await insertEvent('production');
    const s2 = await insertEvent('staging');
    await staging.waitFor(isEvent(s2));
    await production.waitFor(isEvent(p1));
    await sleep(200);
    assert.deepEqual(ids(staging), [s1, s2]);
    assert.deepEqual(ids(production), [p1]);
  });

  test('a run created through the API shows on a run-filtered stream with the same JSON as GET /v1/runs/:id/events', async () => {
    const created = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'stream me' });
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    const s = await stream('vic', { query: { run: id }, lastEventId: 0 });
    await s.waitFor((f) => f.event === 'run-event' && JSON.parse(f.data!).type === 'run.created', 5000, 'run.created');
    await t.settle();
    const listed = (await t.http().get(`/v1/runs/${id}/events`).set('authorization', bearer('vic'))).body as Array<{ id: number }>;
    await s.waitFor(isEvent(listed.at(-1)!.id), 5000, 'the last event of the run');
    assert.deepEqual(s.events().map((e) => e.data), listed, 'replayed and live events equal the run\'s audit trail');
    const other = await insertEvent('staging');
    await sleep(200);
    assert.ok(!ids(s).includes(other), 'events of no run stay out of a run stream');
    const cancelled = await t.http().post(`/v1/runs/${id}/cancel`).set('authorization', bearer('alice')).send({});
    assert.equal(cancelled.status, 200, cancelled.text);
  });
});

describe('event stream: Last-Event-ID', () => {
  test('a reconnect gets exactly the events after the id it names, then live ones, none twice', async () => {
    const first = await stream('vic', { query: { environment: 'staging' } });
    await first.waitFor((f) => f.retry !== undefined);
    const e1 = await insertEvent();
    const e2 = await insertEvent();
    await first.waitFor(isEvent(e2));
    first.close();
    const missed = [await insertEvent(), await insertEvent('production'), await insertEvent()];
    const again = await stream('vic', { query: { environment: 'staging' }, lastEventId: e2 });
    await again.waitFor(isEvent(missed[2]!));
    const live = await insertEvent();
    await again.waitFor(isEvent(live));
    assert.deepEqual(ids(again), [missed[0], missed[2], live], 'only staging events after e2, in order, once');
    assert.ok(e1 < e2);
  });

  test('a replay longer than one page comes in order and in full', async () => {
    const from = await insertEvent();
    await t.control.query(`INSERT INTO run_events (run_id, environment, type, actor) SELECT NULL, 'staging', 'test.bulk', 'test' FROM generate_series(1, 450)`);
    const last = await insertEvent();
    const s = await stream('vic', { lastEventId: from });
    await s.waitFor(isEvent(last), 10_000);
    const got = ids(s);
    assert.equal(got.length, 451);
    assert.deepEqual(got, [...got].sort((a, b) => a - b));
    assert.equal(new Set(got).size, got.length);
  });
});

describe('event stream: commit order', () => {
  test('an event committed after a later id is not skipped: the feed waits for it, then sends both in id order', async () => {
    const s = await stream('vic', { query: { environment: 'staging' } });
    await s.waitFor((f) => f.retry !== undefined);
    const open = new pg.Client({ connectionString: t.control.url });
    await open.connect();
    try {
      await open.query('BEGIN');
      const early = Number((await open.query(`INSERT INTO run_events (run_id, environment, type, actor) VALUES (NULL, 'staging', 'test.slow-commit', 'test') RETURNING id`)).rows[0].id);
      const late = await insertEvent('staging', 'test.fast-commit');
      assert.ok(late > early);
      await sleep(500);
      assert.ok(!ids(s).includes(late), 'the later id waits while a lower one may still commit');
      await open.query('COMMIT');
      await s.waitFor(isEvent(late), 5000);
      const got = ids(s);
      assert.deepEqual(got.slice(got.indexOf(early)), [early, late]);
      // A client that resumes from `early` therefore gets `late`: nothing falls between.
      const resumed = await stream('vic', { query: { environment: 'staging' }, lastEventId: early });
      await resumed.waitFor(isEvent(late));
    } finally {
      await open.end();
    }
  });

  test('an id taken by a transaction that rolls back holds the stream only while that transaction is open', async () => {
    const s = await stream('vic', { query: { environment: 'staging' } });
    await s.waitFor((f) => f.retry !== undefined);
    const open = new pg.Client({ connectionString: t.control.url });
    await open.connect();
    try {
      await open.query('BEGIN');
      await open.query(`INSERT INTO run_events (run_id, environment, type, actor) VALUES (NULL, 'staging', 'test.rolled-back', 'test')`);
      const after = await insertEvent();
      await sleep(300);
      assert.ok(!ids(s).includes(after));
      await open.query('ROLLBACK');
      const started = Date.now();
      await s.waitFor(isEvent(after), 5000);
      assert.ok(Date.now() - started < 5000);
      assert.ok(!s.events().some((e) => e.data.type === 'test.rolled-back'));
    } finally {
      await open.end();
    }
  });
});

describe('event stream: across replicas', () => {
  test('a second app on the same control database streams what the first one writes', async () => {
    const config = await loadConfig({
      DATABASE_URL: t.control.url, STAGING_DATABASE_URL: t.targets.staging.url, PRODUCTION_DATABASE_URL: t.targets.production.url,
      AUTH_TOKENS: JSON.stringify([{ subject: 'vic', roles: ['viewer'], token: tokenOf('vic') }]), LOG_LEVEL: 'silent', SCHEDULER: 'off', EVENTS_POLL_MS: '50',
    });
    const replica = await buildApp(config);
    await replica.listen({ port: 0, host: '127.0.0.1' });
    try {
      const s = await stream('vic', { query: { environment: 'staging' } }, `http://127.0.0.1:${(replica.server.address() as import('node:net').AddressInfo).port}`);
      await s.waitFor((f) => f.retry !== undefined);
      const created = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'from replica one' });
      assert.equal(created.status, 201, created.text);
      await s.waitFor((f) => f.event === 'run-event' && JSON.parse(f.data!).runId === created.body.id, 5000, 'the other replica\'s run.created');
      await t.settle();
      const cancelled = await t.http().post(`/v1/runs/${created.body.id}/cancel`).set('authorization', bearer('alice')).send({});
      assert.equal(cancelled.status, 200, cancelled.text);
      s.close();
    } finally {
      await replica.close();
    }
  });
});

describe('event stream: limits', () => {
  test('per subject: beyond EVENT_STREAMS_PER_SUBJECT a 429 problem with Retry-After; another subject still gets one', async () => {
    const mine = [await stream('carol'), await stream('carol'), await stream('carol')];
    for (const s of mine) assert.equal(s.status, 200);
    const fourth = await stream('carol');
    assert.equal(fourth.status, 429);
    assert.equal(fourth.headers.get('retry-after'), '5');
    assert.match(JSON.parse(fourth.text!).detail, /EVENT_STREAMS_PER_SUBJECT/);
    assert.equal((await stream('cora')).status, 200);
    mine[0]!.close();
    // The slot comes back once the server sees the disconnect.
    for (let i = 0; i < 50; i++) {
      const retry = await stream('carol');
      if (retry.status === 200) return;
      await sleep(100);
    }
    assert.fail('the closed stream never gave its slot back');
  });

  test('per replica: beyond EVENT_STREAMS_MAX a 503 problem; EVENT_STREAMS_MAX=0 turns streaming off', async () => {
    for (const [max, opened] of [[1, 1], [0, 0]] as const) {
      const config = await loadConfig({ DATABASE_URL: t.control.url, AUTH_TOKENS: JSON.stringify([{ subject: 'vic', roles: ['viewer'], token: tokenOf('vic') }]), LOG_LEVEL: 'silent', EVENT_STREAMS_MAX: String(max) });
      const app = await buildApp(config);
      await app.listen({ port: 0, host: '127.0.0.1' });
      const at = `http://127.0.0.1:${(app.server.address() as import('node:net').AddressInfo).port}`;
      try {
        const got: OpenStream[] = [];
        for (let i = 0; i < opened; i++) got.push(await stream('vic', {}, at));
        for (const s of got) assert.equal(s.status, 200);
        const refused = await stream('vic', {}, at);
        assert.equal(refused.status, 503);
        assert.match(refused.headers.get('content-type') ?? '', /^application\/problem\+json/);
        assert.equal(refused.headers.get('retry-after'), '5');
        assert.match(JSON.parse(refused.text!).detail, /EVENT_STREAMS_MAX/);
        for (const s of got) s.close();
      } finally {
        await app.close();
      }
    }
  });

  test('a reader that stops reading is dropped with an overflow event naming the last id it was sent', async () => {
    const config = await loadConfig({ DATABASE_URL: t.control.url, AUTH_TOKENS: JSON.stringify([{ subject: 'vic', roles: ['viewer'], token: tokenOf('vic') }]), LOG_LEVEL: 'silent', EVENTS_POLL_MS: '50', EVENT_STREAM_BUFFER_KB: '64' });
    const app = await buildApp(config);
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (app.server.address() as import('node:net').AddressInfo).port;
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/v1/events/stream', headers: { authorization: bearer('vic') } }, resolve).on('error', reject);
      });
      assert.equal(res.statusCode, 200);
      res.pause();
      await sleep(200);
      // ~24 MB of events: more than the socket buffers on both sides hold.
      await t.control.query(`INSERT INTO run_events (run_id, environment, type, actor, details)
                             SELECT NULL, 'staging', 'test.flood', 'test', jsonb_build_object('pad', repeat('x', 4000)) FROM generate_series(1, 6000)`);
      for (let i = 0; i < 100 && app.services.events.open > 0; i++) await sleep(100);
      assert.equal(app.services.events.open, 0, 'the slow stream was dropped and its slot released');
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.resume();
      await new Promise((resolve) => res.on('end', resolve));
      const overflow = /event: overflow\ndata: (.*)\n\n$/.exec(body);
      assert.ok(overflow, `the stream ends with an overflow event; tail: ${body.slice(-300)}`);
      const info = JSON.parse(overflow[1]!) as { detail: string; lastEventId: number };
      assert.match(info.detail, /Last-Event-ID/);
      const sent = [...body.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
      assert.equal(info.lastEventId, sent.at(-1), 'lastEventId is the last event the reader got');
      assert.ok(sent.length < 6000, 'the reader did not get everything: it was dropped');
    } finally {
      await app.close();
    }
  });

  test('shutdown ends open streams with a shutdown event instead of hanging the close', async () => {
    const config = await loadConfig({ DATABASE_URL: t.control.url, AUTH_TOKENS: JSON.stringify([{ subject: 'vic', roles: ['viewer'], token: tokenOf('vic') }]), LOG_LEVEL: 'silent' });
    const app = await buildApp(config);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const s = await stream('vic', {}, `http://127.0.0.1:${(app.server.address() as import('node:net').AddressInfo).port}`);
    await s.waitFor((f) => f.retry !== undefined);
    await app.close();
    await s.waitFor((f) => f.event === 'shutdown', 5000, 'the shutdown event');
    await s.ended;
  });
});
