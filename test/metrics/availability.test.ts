// /metrics answers fast whatever the databases do: a refused target, a target
// that accepts connections and never answers, a control database that is
// gone. And it is public unless METRICS_TOKEN is set.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import supertest from 'supertest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { bearer, startTestApp, tokenOf, type TestApp } from '../support/app.js';
import { assertProblem } from '../runs/helpers.js';
import { parseScrape } from './scrape.js';

const METRICS_TOKEN = 'metrics-scraper-token-0123456789';
const REFUSED = 'postgres://sf:RefusedPw@127.0.0.1:1/nowhere';

/** Accepts TCP connections and never says a word: the worst kind of slow database. */
async function blackhole(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `postgres://sf:SilentPw@127.0.0.1:${port}/silent`,
    connections: () => accepted,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a down and a hung target', () => {
  let t: TestApp;
  let hung: Awaited<ReturnType<typeof blackhole>>;
  const logLines: string[] = [];
  before(async () => {
    hung = await blackhole();
    t = await startTestApp({
      label: 'metrics_down',
      env: { STAGING_DATABASE_URL: REFUSED, PRODUCTION_DATABASE_URL: hung.url, METRICS_TOKEN },
      logStream: { write: (line: string) => void logLines.push(line) },
    });
  });
  after(async () => {
    await t?.close();
    await hung?.close();
  });

  const get = () => t.http().get('/metrics').set('authorization', `Bearer ${METRICS_TOKEN}`);

  test('METRICS_TOKEN set: /metrics needs exactly that bearer token (401 problem+json otherwise)', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-wrong-token-wrong', bearer('root'), `Basic ${METRICS_TOKEN}`, METRICS_TOKEN]) {
      const req = t.http().get('/metrics');
      const res = await (authorization ? req.set('authorization', authorization) : req);
      assertProblem(res, 401, /METRICS_TOKEN/);
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
      assert.ok(!res.text.includes('starforge_'), 'no metric leaks');
    }
  });

  test('a refused and a hung target: /metrics answers within 1.5 s with target_up 0 for both, control up', async () => {
    const started = Date.now();
    const res = await get();
    const took = Date.now() - started;
    assert.equal(res.status, 200, res.text);
    assert.ok(took < 1500, `scrape took ${took} ms`);
    const m = parseScrape(res.text);
    assert.equal(m.value('starforge_target_up', { environment: 'staging' }), 0);
    assert.equal(m.value('starforge_target_up', { environment: 'production' }), 0);
    assert.equal(m.value('starforge_control_up'), 1);
    assert.equal(m.value('starforge_runs', { environment: 'staging', status: 'created' }), 0, 'control figures still there');
    assert.equal(m.value('starforge_pending_migrations', { environment: 'staging' }), undefined, 'no figure from a target that did not answer');
    assert.equal(m.value('starforge_etl_backlog_snapshots', { environment: 'production' }), undefined);
    assert.equal(m.value('starforge_maintenance_window_open', { environment: 'staging' }), 1, 'config-only figures stay');
    for (const secret of ['RefusedPw', 'SilentPw', '127.0.0.1']) assert.ok(!res.text.includes(secret), `${secret} in /metrics`);
  });

  test('repeated scrapes stay fast and never pile up connections to the hung target', async () => {
    for (let i = 0; i < 3; i++) {
      t.app.services.stateMetrics.invalidate();
      const started = Date.now();
      const res = await get();
      assert.equal(res.status, 200);
      assert.ok(Date.now() - started < 1500, `scrape ${i} took ${Date.now() - started} ms`);
      assert.equal(parseScrape(res.text).value('starforge_target_up', { environment: 'production' }), 0);
    }
    // One read at a time per target: a later scrape waits on the read still
    // connecting instead of opening another (the pool's 5 s connect timeout
    // may end one attempt in between, so allow one reconnect).
    assert.ok(hung.connections() <= 2, `${hung.connections()} connections to the hung target`);
  });

  test('a database that stops answering is logged once per outage, without its URL', () => {
    const down = logLines.filter((l) => l.includes('metrics: database did not answer'));
    assert.equal(down.filter((l) => l.includes('"source":"target staging"')).length, 1, down.join(''));
    assert.equal(down.filter((l) => l.includes('"source":"target production"')).length, 1, down.join(''));
    assert.ok(down.some((l) => /connection refused/.test(l)) && down.some((l) => /did not answer within 1000 ms/.test(l)), down.join(''));
    const all = logLines.join('');
    for (const secret of ['RefusedPw', 'SilentPw', METRICS_TOKEN]) assert.ok(!all.includes(secret), `${secret} in the logs`);
  });
});

describe('the control database is gone', () => {
  let app: FastifyInstance;
  before(async () => {
    const config = await loadConfig({
      DATABASE_URL: 'postgres://sf:ControlPw@127.0.0.1:1/control',
      STAGING_DATABASE_URL: REFUSED,
      LOG_LEVEL: 'silent',
      AUTH_TOKENS: JSON.stringify([{ subject: 'root', roles: ['admin'], token: tokenOf('root') }]),
    });
    app = await buildApp(config);
  });
  after(async () => app?.close());

  test('/metrics is public without METRICS_TOKEN and answers fast with starforge_control_up 0', async () => {
    const started = Date.now();
    const res = await supertest(app.server).get('/metrics');
    assert.equal(res.status, 200, res.text);
    assert.ok(Date.now() - started < 1500);
    const m = parseScrape(res.text);
    assert.equal(m.value('starforge_control_up'), 0);
    assert.equal(m.value('starforge_target_up', { environment: 'staging' }), 0);
    assert.equal(m.all('starforge_runs').length, 0, 'no run figures without the control database');
    assert.equal(m.value('starforge_target_up', { environment: 'production' }), undefined, 'an environment without a URL has no up sample');
    assert.ok(!res.text.includes('ControlPw'));
  });
});
