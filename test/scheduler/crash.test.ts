// kill -9 in the middle of a scheduled apply: a service process applies a run
// whose second migration builds an index CONCURRENTLY over a function that
// sleeps (30 s on the real rows, instant on preflight's empty copy). The
// process is killed during that build; a new process started on the same
// control database marks the run interrupted with an accurate reconciliation
// (what landed, the INVALID index, workers still paused), re-applies nothing,
// and no advisory lock is left behind.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, migrationSource as migration } from '../support/migrations.js';
import { callServer, serverSetup, serverToken, startServer, testEnvironment, waitFor, type ServerProcess } from './server-process.js';


const BASE = {
  '1000_etl-control': migration(
    `CREATE TABLE etl_control (id boolean PRIMARY KEY DEFAULT true CHECK (id), paused boolean NOT NULL DEFAULT false, reason text, changed_by text, changed_at timestamptz NOT NULL DEFAULT now()); INSERT INTO etl_control DEFAULT VALUES`,
    'DROP TABLE etl_control',
  ),
  '1100_create-accounts': migration(`CREATE TABLE accounts (id int PRIMARY KEY, email text); INSERT INTO accounts SELECT g, 'u' || g || '@x' FROM generate_series(1, 50) g`, 'DROP TABLE accounts'),
  // 0.6 s per call: 50 rows make the index build below take 30 s (pg_sleep(30) in all).
  '1200_slow-function': migration(
    `CREATE FUNCTION sf_slow(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $fn$ BEGIN PERFORM pg_sleep(0.6); RETURN i; END $fn$`,
    'DROP FUNCTION sf_slow(int)',
  ),
};
const PENDING = {
  '2000_add-note': migration('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note'),
  '3000_slow-index': migration('CREATE INDEX CONCURRENTLY accounts_slow_idx ON accounts (sf_slow(id))', 'DROP INDEX CONCURRENTLY IF EXISTS accounts_slow_idx', { noTransaction: true }),
  '4000_add-score': migration('ALTER TABLE accounts ADD COLUMN score int', 'ALTER TABLE accounts DROP COLUMN score'),
};

let control: TestDatabase;
let target: TestDatabase;
let production: TestDatabase;
let dir: string;
let env: Record<string, string>;
const servers: ServerProcess[] = [];

const call = (server: ServerProcess, method: string, path: string, who: string, body?: object) => callServer(server, method, path, serverToken(who), body);

const applyLocks = async () => (await control.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 7318
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)).rows[0].n as number;

before(async () => {
  control = await createTestDatabase('crash_ctl');
  target = await createTestDatabase('crash_stg');
  production = await createTestDatabase('crash_prd');
  dir = await mkdtemp(join(tmpdir(), 'sf-crash-'));
  const migrations = join(dir, 'migrations');
  await mkdir(migrations);
  for (const [name, source] of Object.entries(BASE)) await writeFile(join(migrations, `${name}.js`), source);
  await applyMigrations(target.url, migrations, 3);
  for (const [name, source] of Object.entries(PENDING)) await writeFile(join(migrations, `${name}.js`), source);
  env = await serverSetup(dir, control.url, {
    staging: testEnvironment('staging', migrations, dir, { workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 } }),
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: migrations },
  }, { staging: target.url, production: production.url });
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, target, production].map((db) => db?.drop()));
  await rm(dir, { recursive: true, force: true });
});

test('kill -9 mid-apply: the next process marks the run interrupted with an accurate reconciliation, applies nothing twice, leaves no lock', { timeout: 120_000 }, async () => {
  const a = await startServer('crash-a', env);
  servers.push(a);
  const created = await call(a, 'POST', '/v1/runs', 'alice', { environment: 'staging', description: 'crash me' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id as string;
  await waitFor('preflight', async () => {
    const run = (await call(a, 'GET', `/v1/runs/${id}`, 'vic')).body;
    if (run.status === 'preflight_failed') throw new Error(JSON.stringify(run.error));
    return run.status === 'awaiting_approval' ? run : undefined;
  }, 60_000);
  const approved = await call(a, 'POST', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
  assert.equal(approved.body.status, 'scheduled');

  // The scheduler of process A starts it; wait until the index build is running on the target.
  const building = await waitFor('the CONCURRENTLY build', async () => {
    const { rows } = await target.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'starforge-run-%-migrate' AND state = 'active' AND query ILIKE 'CREATE INDEX CONCURRENTLY%'`);
    return rows[0]?.pid as number | undefined;
  }, 60_000, 100);
  assert.equal((await call(a, 'GET', `/v1/runs/${id}`, 'vic')).body.status, 'applying');
  assert.equal(await applyLocks(), 1, 'process A holds the run\'s apply lock');

  a.child.kill('SIGKILL');
  assert.equal(await a.exited, 'SIGKILL');
  // Its control connections died with it (the lock too); its statement on the target did not.
  await waitFor('the apply lock to go', async () => ((await applyLocks()) === 0 ? true : undefined), 10_000);
  const stillThere = await target.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [building]);
  assert.equal(stillThere.rows[0].n, 1, 'the orphaned index build still runs on the target');
  assert.equal((await control.query('SELECT status FROM runs WHERE id = $1', [id])).rows[0].status, 'applying');

  const b = await startServer('crash-b', env);
  servers.push(b);
  const run = await waitFor('reconciliation', async () => {
    const r = (await call(b, 'GET', `/v1/runs/${id}`, 'vic')).body;
    return r.status === 'interrupted' ? r : undefined;
  }, 20_000);
  assert.equal(run.error.code, 'interrupted');

  const report = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
  assert.equal(report.outcome, 'interrupted');
  const r = report.reconciliation;
  assert.equal(r.previousStatus, 'applying');
  assert.match(r.lease.owner, /:\d+:/);
  // The apply ledgers each migration as it commits (issue 17's live progress): 2000 landed and is ledgered.
  assert.deepEqual(r.migrations, [
    { name: '2000_add-note', inTarget: true, inLedger: true },
    { name: '3000_slow-index', inTarget: false, inLedger: false },
    { name: '4000_add-score', inTarget: false, inLedger: false },
  ]);
  assert.deepEqual(r.landed, ['2000_add-note']);
  assert.deepEqual(r.ledgerMismatch, []);
  assert.deepEqual(r.ledgerRepaired, []);
  const ledger = await control.query('SELECT name, sha256, run_id FROM migration_ledger ORDER BY name');
  assert.deepEqual(ledger.rows, [{ name: '2000_add-note', sha256: run.migrations[0].sha256, run_id: id }], 'the ledger now records exactly what landed');
  assert.deepEqual(r.invalidIndexes, [{ index: 'accounts_slow_idx', table: 'accounts' }]);
  assert.equal(r.workers.etlControlPaused, true, 'workers are still paused');
  assert.equal(r.workers.pausedByRun, true);
  assert.deepEqual(r.orphanedSessions.map((s: { pid: number; terminated: boolean }) => [s.pid, s.terminated]), [[building, true]]);

  // What is really on the target agrees with the report.
  const idx = await target.query(`SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'accounts_slow_idx'`);
  assert.deepEqual(idx.rows, [{ indisvalid: false }]);
  assert.equal((await target.query('SELECT paused FROM etl_control')).rows[0].paused, true);

  // Never re-applied: a few ticks later, still interrupted, one apply, each migration at most once.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal((await call(b, 'GET', `/v1/runs/${id}`, 'vic')).body.status, 'interrupted');
  const { rows: events } = await control.query('SELECT type FROM run_events WHERE run_id = $1 ORDER BY id', [id]);
  const types = events.map((e) => e.type as string);
  assert.equal(types.filter((x) => x === 'apply.started').length, 1);
  assert.equal(types.filter((x) => x === 'ledger.reconciled').length, 0, 'nothing to repair: the ledger was written as 2000 committed');
  assert.equal(types.filter((x) => x === 'migration.applied').length, 1);
  assert.equal(types.filter((x) => x === 'run.interrupted').length, 1);
  const { rows: applied } = await target.query('SELECT name, count(*)::int AS n FROM pgmigrations GROUP BY name ORDER BY name');
  assert.deepEqual(applied.map((x) => [x.name, x.n]), [['1000_etl-control', 1], ['1100_create-accounts', 1], ['1200_slow-function', 1], ['2000_add-note', 1]]);

  // No leftover lock or session: not on the control database, not on the target.
  assert.equal(await applyLocks(), 0);
  const leftovers = await target.query(`
    SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))::int AS locks,
           (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND (application_name LIKE 'starforge-run-%' OR application_name IN ('starforge-apply', 'starforge-pause')))::int AS sessions`);
  assert.deepEqual(leftovers.rows[0], { locks: 0, sessions: 0 });
  assert.equal((await control.query('SELECT lease_owner FROM runs WHERE id = $1', [id])).rows[0].lease_owner, null);
  await b.stop();
});
