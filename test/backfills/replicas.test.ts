// Two service processes (same control database, same targets, both executing
// backfills) and four throttled jobs across two environments: both processes
// take part, yet each job's batches all come from one process, each job is
// claimed once, and every row of every table is changed exactly once. A
// gracefully stopped process hands its job over at once, mid-way.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { callServer, startServer, waitFor, type ServerProcess } from '../scheduler/server-process.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { configSource, createItems, definitionsDir, itemsDefinition, updateHistogram, type DefinitionsDir } from './helpers.js';

const TOKENS = [
  { subject: 'olga', roles: ['operator'], token: 'bf-replicas-olga-0123456789abcdef' },
  { subject: 'vic', roles: ['viewer'], token: 'bf-replicas-vic-0123456789abcdef' },
];
const ROWS = 8000;
const JOBS = [
  { environment: 'staging', table: 't1' }, { environment: 'staging', table: 't2' },
  { environment: 'production', table: 't3' }, { environment: 'production', table: 't4' },
];

let control: TestDatabase;
const targets: Record<string, TestDatabase> = {};
let defs: DefinitionsDir;
let env: Record<string, string>;
let servers: ServerProcess[] = [];

/** Every batch statement on `table` logs the session's application_name, which names the executing process. */
async function logBatches(db: TestDatabase, table: string): Promise<void> {
  await db.query(`
    CREATE TABLE IF NOT EXISTS batch_log (tbl text, app text, at timestamptz DEFAULT clock_timestamp());
    CREATE OR REPLACE FUNCTION log_batch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO batch_log (tbl, app) VALUES (TG_TABLE_NAME, current_setting('application_name')); RETURN NULL; END $$;
    CREATE TRIGGER ${table}_log_batch AFTER UPDATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION log_batch();
  `);
}

before(async () => {
  control = await createTestDatabase('bf_repl_ctl');
  targets.staging = await createTestDatabase('bf_repl_stg');
  targets.production = await createTestDatabase('bf_repl_prd');
  defs = await definitionsDir();
  for (const { environment, table } of JOBS) {
    await createItems(targets[environment]!, ROWS, table);
    await logBatches(targets[environment]!, table);
    await defs.write(`${table}-power`, itemsDefinition(table));
  }
  await writeFile(join(defs.dir, 'migration-config.js'), configSource(defs.dir));
  env = {
    DATABASE_URL: control.url,
    STAGING_DATABASE_URL: targets.staging.url,
    PRODUCTION_DATABASE_URL: targets.production.url,
    MIGRATION_CONFIG: join(defs.dir, 'migration-config.js'),
    DATA_DIR: join(defs.dir, 'data'),
    AUTH_TOKENS: JSON.stringify(TOKENS),
    SCHEDULER: 'off',
    ETL_WORKER: 'off',
    // Long: a job handed over within seconds was released, not taken over after a lapsed lease.
    BACKFILL_LEASE_SECONDS: '30',
    LOG_LEVEL: 'warn',
  };
  // One after the other: both migrate the same control database at start-up.
  servers = [await startServer('bf-replica-a', env), await startServer('bf-replica-b', env)];
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, ...Object.values(targets)].map((db) => db?.drop()));
  await defs?.remove();
});

test('two processes never run one job at once: one executor per job, every row once, both processes busy', { timeout: 120_000 }, async () => {
  const ids: string[] = [];
  for (const [i, { environment, table }] of JOBS.entries()) {
    const res = await callServer(servers[i % 2]!, 'POST', '/v1/backfills', TOKENS[0]!.token, { environment, name: `${table}-power`, batchSize: 400, maxRowsPerSecond: 3000 });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    ids.push(res.body.id);
  }
  await waitFor('all jobs', async () => {
    const jobs = await Promise.all(ids.map((id, i) => callServer(servers[i % 2]!, 'GET', `/v1/backfills/${id}`, TOKENS[1]!.token)));
    const bad = jobs.find((j) => !['pending', 'running', 'succeeded'].includes(j.body.status));
    if (bad) throw new Error(JSON.stringify(bad.body));
    return jobs.every((j) => j.body.status === 'succeeded') ? true : undefined;
  }, 60_000, 250);

  const owners = new Set<string>();
  for (const [i, { environment, table }] of JOBS.entries()) {
    const db = targets[environment]!;
    assert.deepEqual(await updateHistogram(db, table), { 1: ROWS }, `${table}: every row once`);
    const events = (await db.query('SELECT type, details FROM sfm_backfill.backfill_events WHERE job_id = $1 ORDER BY seq', [ids[i]])).rows;
    assert.deepEqual(events.map((e) => e.type), ['backfill.pending', 'backfill.running', 'backfill.succeeded'], `${table}: claimed once, never taken over`);
    const owner = events[1].details.owner as string;
    owners.add(owner);
    const batches = (await db.query('SELECT app, count(*)::int AS n FROM batch_log WHERE tbl = $1 GROUP BY app', [table])).rows;
    assert.deepEqual(batches.map((b) => b.app), [`starforge-backfill ${table}-power ${owner}`.slice(0, 63)], `${table}: all batches by one process`);
    const job = (await db.query('SELECT batches::int FROM sfm_backfill.backfill_jobs WHERE id = $1', [ids[i]])).rows[0];
    assert.equal(batches[0].n, job.batches, `${table}: as many batch statements ran as committed`);
  }
  assert.equal(owners.size, 2, `both processes executed jobs: ${[...owners].join(', ')}`);
});

test('a process stopped gracefully mid-job gives its lease back; the other resumes at once from the checkpoint', { timeout: 120_000 }, async () => {
  const db = targets.staging!;
  await db.query('ALTER TABLE t1 DISABLE TRIGGER t1_count_updates; UPDATE t1 SET power = NULL, updates = 0; ALTER TABLE t1 ENABLE TRIGGER t1_count_updates; TRUNCATE batch_log');
  const res = await callServer(servers[0]!, 'POST', '/v1/backfills', TOKENS[0]!.token, { environment: 'staging', name: 't1-power', batchSize: 400, maxRowsPerSecond: 2000 });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const id = res.body.id as string;
  const running = await waitFor('the job to run', async () => {
    const { rows } = await db.query('SELECT lease_owner, rows_done::int FROM sfm_backfill.backfill_jobs WHERE id = $1', [id]);
    return rows[0].rows_done >= 1000 ? rows[0] : undefined;
  }, 30_000, 50);
  const first = servers.find((s) => running.lease_owner.includes(`:${s.child.pid}:`))!;
  assert.ok(first, 'the owner is one of the two processes');
  const stoppedAt = Date.now();
  assert.equal(await first.stop(), '0');
  servers = servers.filter((s) => s !== first);
  const done = await waitFor('the other process to finish it', async () => {
    const j = (await callServer(servers[0]!, 'GET', `/v1/backfills/${id}`, TOKENS[1]!.token)).body;
    return j.status === 'succeeded' ? j : undefined;
  }, 30_000, 100);
  assert.equal(done.rowsDone, ROWS);
  assert.deepEqual(await updateHistogram(db, 't1'), { 1: ROWS });
  const apps = (await db.query('SELECT DISTINCT app FROM batch_log WHERE tbl = $1', ['t1'])).rows.map((r) => r.app as string);
  assert.equal(apps.length, 2, 'both processes ran batches, one after the other');
  // Handed over at once: no lease had to lapse (the lease is 30 s; the released job is claimed at the other's next 1 s poll).
  const events = (await db.query(`SELECT type, details, at FROM sfm_backfill.backfill_events WHERE job_id = $1 ORDER BY seq`, [id])).rows;
  assert.deepEqual(events.map((e) => e.type), ['backfill.pending', 'backfill.running', 'backfill.succeeded'], 'a release is no status change: no takeover event');
  const firstBatchOfSecond = (await db.query(`SELECT min(at) AS at FROM batch_log WHERE tbl = 't1' AND app NOT LIKE $1`, [`%:${first.child.pid}:%`])).rows[0].at as Date;
  assert.ok(firstBatchOfSecond.getTime() - stoppedAt < 10_000, `resumed ${firstBatchOfSecond.getTime() - stoppedAt} ms after the stop`);
});
