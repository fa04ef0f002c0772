// kill -9 in the middle of a backfill: a real service process runs a throttled
// 30k-row job and is killed mid-way. What committed is exactly what its
// checkpoint says; a new process takes the job over when the lease lapses,
// resumes from the checkpoint and finishes, and every row was changed exactly
// once (no committed batch redone, none skipped).
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { callServer, startServer, waitFor, type ServerProcess } from '../scheduler/server-process.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { configSource, createItems, definitionsDir, itemsDefinition, updateHistogram, type DefinitionsDir } from './helpers.js';

const TOKENS = [
  { subject: 'olga', roles: ['operator'], token: 'bf-crash-olga-0123456789abcdef' },
  { subject: 'vic', roles: ['viewer'], token: 'bf-crash-vic-0123456789abcdef' },
];
const ROWS = 30_000;

let control: TestDatabase;
let staging: TestDatabase;
let production: TestDatabase;
let defs: DefinitionsDir;
let env: Record<string, string>;
const servers: ServerProcess[] = [];

before(async () => {
  control = await createTestDatabase('bf_crash_ctl');
  staging = await createTestDatabase('bf_crash_stg');
  production = await createTestDatabase('bf_crash_prd');
  defs = await definitionsDir();
  await defs.write('items-power', itemsDefinition());
  await writeFile(join(defs.dir, 'migration-config.js'), configSource(defs.dir));
  await createItems(staging, ROWS);
  env = {
    DATABASE_URL: control.url,
    STAGING_DATABASE_URL: staging.url,
    PRODUCTION_DATABASE_URL: production.url,
    MIGRATION_CONFIG: join(defs.dir, 'migration-config.js'),
    DATA_DIR: join(defs.dir, 'data'),
    AUTH_TOKENS: JSON.stringify(TOKENS),
    SCHEDULER: 'off',
    ETL_WORKER: 'off',
    BACKFILL_LEASE_SECONDS: '2',
    LOG_LEVEL: 'warn',
  };
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, staging, production].map((db) => db?.drop()));
  await rm(join(defs.dir, 'migration-config.js'), { force: true });
  await defs?.remove();
});

const jobRow = async (id: string) => (await staging.query('SELECT status, last_key, rows_done::int, rows_scanned::int, lease_owner FROM sfm_backfill.backfill_jobs WHERE id = $1', [id])).rows[0];

test('kill -9 mid-backfill: the next process resumes from the last committed checkpoint; every row changed exactly once', { timeout: 120_000 }, async () => {
  const a = await startServer('bf-crash-a', env);
  servers.push(a);
  const created = await callServer(a, 'POST', '/v1/backfills', TOKENS[0]!.token, { environment: 'staging', name: 'items-power', batchSize: 500, maxRowsPerSecond: 5000 });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.id as string;
  await waitFor('a third of the rows', async () => ((await jobRow(id)).rows_done >= ROWS / 3 ? true : undefined), 30_000, 50);
  const ownerA = (await jobRow(id)).lease_owner as string;
  assert.match(ownerA, /:\d+:/);

  a.child.kill('SIGKILL');
  assert.equal(await a.exited, 'SIGKILL');
  // Give the target a moment to notice the dead client (an open batch transaction is rolled back, never committed).
  await waitFor('the dead backfill sessions to go', async () => {
    const { rows } = await staging.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'starforge-backfill%' AND state <> 'idle'`);
    return rows[0].n === 0 ? true : undefined;
  }, 10_000, 50);

  // The checkpoint is exactly what committed: rows 1..last_key changed once, none after it.
  const atKill = await jobRow(id);
  assert.equal(atKill.status, 'running');
  assert.equal(atKill.lease_owner, ownerA, 'the dead process still holds the lease until it lapses');
  assert.ok(atKill.rows_done < ROWS, 'killed mid-way');
  const committed = await staging.query(`SELECT count(*) FILTER (WHERE updates = 1)::int AS once, count(*) FILTER (WHERE updates > 1)::int AS more,
      coalesce(max(id) FILTER (WHERE updates = 1), 0)::text AS last, count(*) FILTER (WHERE updates = 0 AND id <= $1::bigint)::int AS holes FROM items`, [atKill.last_key]);
  assert.deepEqual(committed.rows[0], { once: atKill.rows_done, more: 0, last: atKill.last_key, holes: 0 });

  const b = await startServer('bf-crash-b', env);
  servers.push(b);
  const done = await waitFor('the job to finish on B', async () => {
    const j = (await callServer(b, 'GET', `/v1/backfills/${id}`, TOKENS[1]!.token)).body;
    return j.status === 'succeeded' ? j : undefined;
  }, 60_000, 200);
  assert.equal(done.rowsDone, ROWS);
  assert.equal(done.rowsScanned, ROWS);
  assert.deepEqual(await updateHistogram(staging), { 1: ROWS }, 'no committed batch redone, none skipped');

  // The takeover is in the audit trail, on the target and in the control database.
  const events = (await callServer(b, 'GET', `/v1/backfills/${id}/events`, TOKENS[1]!.token)).body as Array<{ type: string; details: Record<string, unknown> }>;
  assert.deepEqual(events.map((e) => e.type), ['backfill.pending', 'backfill.running', 'backfill.running', 'backfill.succeeded']);
  assert.equal(events[1]!.details.owner, ownerA);
  assert.equal(events[2]!.details.takeover, true);
  assert.equal(events[2]!.details.previousOwner, ownerA);
  assert.equal(events[2]!.details.lastKey, atKill.last_key, 'resumed from the checkpoint');
  const ownerB = events[2]!.details.owner as string;
  assert.notEqual(ownerB, ownerA);
  assert.equal(events[3]!.details.owner, ownerB);
  const mirrored = await waitFor('the audit copy', async () => {
    const { rows } = await control.query(`SELECT type FROM run_events WHERE details->>'jobId' = $1 ORDER BY created_at, id`, [id]);
    return rows.length === 4 ? rows : undefined;
  }, 10_000);
  assert.deepEqual(mirrored.map((e) => e.type), events.map((e) => e.type));
  await b.stop();
});
