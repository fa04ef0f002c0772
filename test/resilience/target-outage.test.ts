// The staging target sits behind a TCP proxy the test cuts at a chosen moment
// (connections reset, new ones refused): when preflight copies its schema,
// halfway through preflight's checks on it, and the moment post-apply
// verification starts. Each time the run must end in a failed status with an
// error that says the target went away, never stay preflight_running or
// verifying, and the environment must be free again for the next run.
// (test/runs/unreachable.test.ts covers a target that was never reachable.)
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES } from '../support/migrations.js';
import { api, assertCompleteTrail, freeEnvironments, type ApiRun } from '../runs/helpers.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

const PENDING = { '2000_add-note': FIXTURES.addNote, '3000_add-score': FIXTURES.addScore };

let t: TestApp;
let target: TestDatabase;
let proxy: FaultProxy;
let dir: string;

before(async () => {
  target = await createTestDatabase('outage_tgt');
  proxy = await startFaultProxy(target.url);
  dir = await mkdtemp(join(tmpdir(), 'sf-outage-'));
  const migrations = join(dir, 'migrations');
  await mkdir(migrations);
  for (const [name, source] of Object.entries(FIXTURE_BASE)) await writeFile(join(migrations, `${name}.js`), source);
  await applyMigrations(target.url, migrations, 2);
  for (const [name, source] of Object.entries(PENDING)) await writeFile(join(migrations, `${name}.js`), source);
  const staging = {
    databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: migrations, approvals: { required: ['any'] },
    backup: { method: 'pg_dump', dir: join(dir, 'backups') }, verify: { smokeEtl: false, watchMinutes: 0 },
    workers: { pause: { method: 'sql' }, pauseTimeoutMs: 3000 },
  };
  t = await startTestApp({
    label: 'outage',
    migrationConfigSource: `export default ${JSON.stringify({ environments: { staging, production: { ...staging, databaseUrlEnv: 'PRODUCTION_DATABASE_URL' } } })};\n`,
    env: { STAGING_DATABASE_URL: proxy.route(target.url), DATA_DIR: join(dir, 'data') },
  });
});

// Each test starts with the target reachable and staging free, whatever the previous one left.
beforeEach(async () => {
  await proxy.restore();
  await freeEnvironments(t);
});

after(async () => {
  await t?.close();
  await proxy?.close();
  await target?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Arms a cut, runs `action`, and fails unless the cut fired within `ms`. */
async function cutDuring(pattern: RegExp, action: () => Promise<void>, ms = 30_000): Promise<void> {
  let fired = false;
  const cut = proxy.cutWhen(pattern).then(() => { fired = true; });
  await action();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([cut, new Promise((resolve) => { timer = setTimeout(resolve, ms); })]);
  clearTimeout(timer);
  assert.ok(fired, `the proxy never saw ${pattern}: the fault was not injected`);
}

async function run(id: string): Promise<ApiRun> {
  const res = await api(t).get(id);
  assert.equal(res.status, 200, res.text);
  return res.body as ApiRun;
}

async function activeRunOfStaging(): Promise<unknown> {
  const envs = await api(t).environments();
  assert.equal(envs.status, 200, envs.text);
  return (envs.body as Array<{ name: string; activeRun: unknown }>).find((e) => e.name === 'staging')!.activeRun;
}

/** After an outage: the target is back, and a new run on staging can be created and passes preflight. */
async function assertEnvironmentFree(): Promise<void> {
  assert.equal(await activeRunOfStaging(), null, 'the failed run no longer holds staging');
  const next = await api(t).create('alice', { environment: 'staging', description: 'after the outage' });
  assert.equal(next.status, 201, next.text);
  await t.settle();
  const passed = await run(next.body.id);
  assert.equal(passed.status, 'awaiting_approval', JSON.stringify(passed.error));
  const cancelled = await api(t).cancel(passed.id, 'alice', 'test cleanup');
  assert.equal(cancelled.status, 200, cancelled.text);
}

async function assertPreflightFailedOnOutage(id: string): Promise<void> {
  await t.settle();
  const failed = await run(id);
  assert.equal(failed.status, 'preflight_failed', `run is ${failed.status}, not preflight_failed: ${JSON.stringify(failed.error)}`);
  assert.equal(failed.error?.code, 'target-unreachable');
  assert.match(failed.error!.message, /staging database/);
  assert.match(failed.error!.message, /connection (refused|reset|failed|terminated|lost)/i);
  assert.equal(failed.error!.message.includes(`:${proxy.port}`), false, 'the error names no host or port');
  const report = await api(t).report(id);
  assert.equal(report.status, 200, report.text);
  assert.equal(report.body.report.outcome, 'failed');
  assert.ok(report.body.report.findings.some((f: { rule: string; severity: string }) => f.rule === 'target-unreachable' && f.severity === 'error'), report.text);
  assert.deepEqual(await assertCompleteTrail(t, failed), ['created', 'preflight_running', 'preflight_failed']);
  // Nothing is left running in the background for this run.
  const locks = await t.control.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
  assert.equal(locks.rows[0].n, 0, 'no preflight lock left behind');
}

test('target gone when preflight copies its schema: preflight_failed naming the outage, environment free again', { timeout: 60_000 }, async () => {
  let id = '';
  // pg_dump announces itself in its startup packet; from then on the target refuses connections.
  await cutDuring(/pg_dump/, async () => {
    const created = await api(t).create('alice', { environment: 'staging', description: 'target vanishes at pg_dump' });
    assert.equal(created.status, 201, created.text);
    id = created.body.id;
  });
  await assertPreflightFailedOnOutage(id);
  await proxy.restore();
  await assertEnvironmentFree();
});

test('target connection reset in the middle of preflight\'s checks: preflight_failed, not stuck in preflight_running', { timeout: 60_000 }, async () => {
  let id = '';
  // checkTarget's long-transaction query, after the rehearsal: the connection dies with the query in flight.
  await cutDuring(/AS seconds, left\(query, 200\)/, async () => {
    const created = await api(t).create('alice', { environment: 'staging', description: 'target vanishes mid-check' });
    assert.equal(created.status, 201, created.text);
    id = created.body.id;
  });
  await assertPreflightFailedOnOutage(id);
  await proxy.restore();
  await assertEnvironmentFree();
});

test('target gone when verification starts: verification_failed with a clear error, not stuck in verifying', { timeout: 90_000 }, async () => {
  const created = await api(t).create('alice', { environment: 'staging', description: 'target vanishes at verification' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const id = created.body.id as string;
  assert.equal((await run(id)).status, 'awaiting_approval');
  const approved = await api(t).decide(id, 'bob', 'engineering');
  assert.equal(approved.status, 201, approved.text);
  // Verification's first check after reading the migrations table; migrate has finished by then.
  await cutDuring(/AS max_connections FROM pg_stat_activity/, async () => {
    const applied = await t.http().post(`/v1/runs/${id}/apply`).set('authorization', bearer('olga')).send({ confirm: 'staging' });
    assert.equal(applied.status, 202, applied.text);
  });
  await t.settle();
  const ended = await run(id);
  assert.ok(['verification_failed', 'failed'].includes(ended.status), `run is ${ended.status}: ${JSON.stringify(ended.error)}`);
  assert.equal(ended.error?.code, 'target-unreachable', JSON.stringify(ended.error));
  assert.match(ended.error!.message, /staging database/);
  assert.match(ended.error!.message, /applied/, 'the error says the migrations had landed');
  const report = await t.http().get(`/v1/runs/${id}/report`).set('authorization', bearer('vic'));
  assert.equal(report.status, 200, report.text);
  assert.equal(report.body.apply.report.failure.phase, 'verify');
  assert.deepEqual(await assertCompleteTrail(t, ended), ['created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled', 'applying', 'verifying', ended.status]);

  // The migrations did land (only verification was cut short), the ledger says so, and nothing holds the run.
  await proxy.restore();
  const { rows: applied } = await target.query('SELECT name FROM pgmigrations ORDER BY id');
  assert.deepEqual(applied.map((r) => r.name), [...Object.keys(FIXTURE_BASE), ...Object.keys(PENDING)]);
  const ledger = await t.control.query('SELECT name FROM migration_ledger WHERE run_id = $1 ORDER BY name', [id]);
  assert.deepEqual(ledger.rows.map((r) => r.name), Object.keys(PENDING));
  assert.equal((await t.control.query('SELECT lease_owner FROM runs WHERE id = $1', [id])).rows[0].lease_owner, null);
  assert.equal(await activeRunOfStaging(), null, 'the failed run no longer holds staging');
});
