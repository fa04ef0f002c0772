// The control database restarts under a running service: a real service
// process (`node dist/src/server.js`, scheduler ticking every second) keeps
// its control database on an embedded PostgreSQL this test owns, which is
// stopped (fast shutdown: every connection dropped) while a run's preflight
// is rehearsing on it, and started again on the same data directory and
// port. While it is down the process stays up, /healthz stays 200, /readyz is
// 503 saying why, and every API call is a 503 problem+json, never a 500. Once
// it is back the same process becomes ready by itself, the interrupted
// preflight finishes (its rehearsal database dropped), and runs can be
// created, read and preflighted again.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/embedded-postgres.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, FIXTURE_BASE, migrationSource } from '../support/migrations.js';
import { freePort } from '../support/net.js';
import { serverSetup, serverToken, startServer, testEnvironment, waitFor, type ServerProcess } from '../scheduler/server-process.js';

const PROBLEM = /^application\/problem\+json/;

let pgDir: string;
let pgPort: number;
let embedded: EmbeddedServer | undefined;
let target: TestDatabase;
let dir: string;
let server: ServerProcess;

const startControl = async () => {
  embedded = await startEmbeddedPostgres({ dir: pgDir, port: pgPort, persistent: true });
};

interface Reply { status: number; type: string; body: any; text: string }

async function call(method: string, path: string, who?: string, body?: object, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: { ...(who ? { authorization: `Bearer ${serverToken(who)}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  }).catch((err: Error) => {
    throw new Error(`${method} ${path}: ${err.message}; the service (exit ${server.child.exitCode ?? server.child.signalCode ?? 'none'}) said:\n${server.output()}`);
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: parsed, text };
}

before(async () => {
  pgDir = await mkdtemp(join(tmpdir(), 'sf-restart-pg-'));
  pgPort = await freePort();
  await startControl();
  await embedded!.createDatabase('sf_control');
  target = await createTestDatabase('restart_tgt');
  dir = await mkdtemp(join(tmpdir(), 'sf-restart-'));
  const migrations = join(dir, 'migrations');
  await mkdir(migrations);
  for (const [name, source] of Object.entries(FIXTURE_BASE)) await writeFile(join(migrations, `${name}.js`), source);
  await applyMigrations(target.url, migrations, 2);
  // Slow to rehearse (the copy lives on the control server) while the target has a slow_rehearsal table; instant otherwise.
  await target.query('CREATE TABLE slow_rehearsal (x int)');
  await writeFile(join(migrations, '2000_add-note.js'), migrationSource(
    `ALTER TABLE accounts ADD COLUMN note text; SELECT pg_sleep(CASE WHEN to_regclass('slow_rehearsal') IS NOT NULL AND current_database() LIKE 'sf_rehearsal%' THEN 2 ELSE 0 END)`,
    'ALTER TABLE accounts DROP COLUMN note'));
  server = await startServer('restart', await serverSetup(dir, embedded!.url('sf_control'), { staging: testEnvironment('staging', migrations, dir) }, { staging: target.url }));
});

after(async () => {
  await server?.stop();
  await embedded?.stop();
  await target?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (pgDir) await rm(pgDir, { recursive: true, force: true });
});

async function awaitingApproval(id: string): Promise<any> {
  return waitFor(`run ${id} to pass preflight`, async () => {
    const run = (await call('GET', `/v1/runs/${id}`, 'vic')).body;
    if (run.status === 'preflight_failed') throw new Error(JSON.stringify(run.error));
    return run.status === 'awaiting_approval' ? run : undefined;
  }, 60_000);
}

test('control database restarted under a running service: 503s while it is down, recovers by itself, never a 500 or a crash', { timeout: 120_000 }, async () => {
  assert.equal((await call('GET', '/readyz')).status, 200);
  // A run is mid-preflight when the database goes: its rehearsal is sleeping on the control server.
  const mid = await call('POST', '/v1/runs', 'alice', { environment: 'staging', description: 'preflight cut by the restart' });
  assert.equal(mid.status, 201, mid.text);
  const pgc = new pg.Client({ connectionString: embedded!.url('postgres') });
  await pgc.connect();
  try {
    await waitFor('the rehearsal to run', async () => {
      const { rows } = await pgc.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'starforge-rehearsal' AND query ILIKE '%pg_sleep%' AND state = 'active'`);
      return rows.length ? true : undefined;
    }, 30_000, 50);
  } finally {
    await pgc.end();
  }

  await embedded!.stop();
  embedded = undefined;
  // Later rehearsals need not be slow.
  await target.query('DROP TABLE slow_rehearsal');

  // Down for a few seconds: several scheduler ticks fail in the background meanwhile.
  const seen: Array<{ what: string; status: number }> = [];
  const downSince = Date.now();
  let rounds = 0;
  while (Date.now() - downSince < 4000 || rounds < 2) {
    rounds++;
    const ready = await call('GET', '/readyz');
    assert.equal(ready.status, 503, `/readyz while the control database is down: ${ready.text}`);
    assert.equal(ready.body.status, 'unavailable');
    assert.match(ready.body.detail, /control database: (connection refused|connection lost|connection failed|server is starting up or shutting down)/);
    assert.equal(ready.text.includes(`:${pgPort}`), false, 'the detail names no host or port');
    assert.equal((await call('GET', '/healthz')).status, 200, 'liveness does not depend on the database');
    const calls: Array<[string, Promise<Reply>]> = [
      ['GET run', call('GET', `/v1/runs/${mid.body.id}`, 'vic')],
      ['list runs', call('GET', '/v1/runs?limit=5', 'vic')],
      ['events', call('GET', `/v1/runs/${mid.body.id}/events`, 'vic')],
      ['preflight report', call('GET', `/v1/runs/${mid.body.id}/preflight`, 'vic')],
      ['create run', call('POST', '/v1/runs', 'alice', { environment: 'staging', description: 'while down' }, { 'idempotency-key': `down-${rounds}` })],
      ['approve', call('POST', `/v1/runs/${mid.body.id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' })],
      ['cancel', call('POST', `/v1/runs/${mid.body.id}/cancel`, 'alice')],
    ];
    for (const [what, pending] of calls) {
      const res = await pending;
      seen.push({ what, status: res.status });
      assert.equal(res.status, 503, `${what} while the control database is down: ${res.status} ${res.text}`);
      assert.match(res.type, PROBLEM, `${what}: content type ${res.type}`);
      assert.equal(res.body.status, 503);
      assert.match(res.body.detail, /control database is unavailable/);
      assert.equal(res.text.includes(`:${pgPort}`), false, `${what}: the detail names no host or port`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.equal(server.child.exitCode, null, `the service process exited while the control database was down:\n${server.output()}`);
  assert.equal(server.child.signalCode, null);

  await startControl();
  const recoveredIn = Date.now();
  await waitFor('/readyz to turn 200 again', async () => ((await call('GET', '/readyz')).status === 200 ? true : undefined), 30_000, 100);
  const readyAfterMs = Date.now() - recoveredIn;

  // The preflight the outage cut short finishes by itself once the database is back (no restart, no re-request).
  const resumed = await awaitingApproval(mid.body.id);
  const midEvents = await call('GET', `/v1/runs/${mid.body.id}/events`, 'vic');
  assert.deepEqual(midEvents.body.filter((e: { to: string | null }) => e.to).map((e: { from: string | null; to: string }) => [e.from, e.to]),
    [[null, 'created'], ['created', 'preflight_running'], ['preflight_running', 'awaiting_approval']]);
  const report = await call('GET', `/v1/runs/${mid.body.id}/preflight`, 'vic');
  assert.equal(report.status, 200, report.text);
  assert.equal(report.body.report.outcome, 'passed');

  // Nothing was written while down: still exactly the one run.
  const listed = await call('GET', '/v1/runs', 'vic');
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(listed.body.items.map((r: { id: string; status: string }) => [r.id, r.status]),
    [[mid.body.id, 'awaiting_approval']], 'no run was half-created while the database was down');
  assert.deepEqual(resumed.approvals, []);

  // And it works again end to end: cancel, create, preflight (on the restarted server), read.
  const cancelled = await call('POST', `/v1/runs/${mid.body.id}/cancel`, 'alice');
  assert.equal(cancelled.status, 200, cancelled.text);
  const next = await call('POST', '/v1/runs', 'alice', { environment: 'staging', description: 'after the restart' }, { 'idempotency-key': 'down-1' });
  assert.equal(next.status, 201, `a key used while the database was down was never consumed: ${next.text}`);
  const passed = await awaitingApproval(next.body.id);
  assert.deepEqual(passed.migrations.map((m: { name: string }) => m.name), ['2000_add-note']);
  const got = await call('GET', `/v1/runs/${next.body.id}`, 'vic');
  assert.equal(got.status, 200, got.text);
  assert.equal(got.body.description, 'after the restart');

  // The cut attempt's rehearsal database did not survive it.
  const admin = new pg.Client({ connectionString: embedded!.url('postgres') });
  await admin.connect();
  try {
    const { rows: leftovers } = await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE 'sf\\_rehearsal\\_%'`);
    assert.deepEqual(leftovers, [], 'the rehearsal database of the cut preflight was dropped');
  } finally {
    await admin.end();
  }
  assert.equal(server.child.exitCode, null, 'never restarted');
  assert.doesNotMatch(server.output(), /uncaught|unhandled/i);
  process.stderr.write(`control restart: ${seen.length} calls while down, all 503; ready ${readyAfterMs} ms after the database was back\n`);
});
