import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runner } from 'node-pg-migrate';
import { readdir } from 'node:fs/promises';
import { CONTROL_MIGRATIONS_DIR, CONTROL_MIGRATIONS_TABLE, migrateControlDatabase } from '../../database/control-migrate.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const TARGET_TABLES = ['backfill_failures', 'backfill_jobs', 'etl_control', 'etl_errors', 'hero_snapshots', 'user_profile_summary', 'user_troops'];
const CONTROL_TABLES = ['backup_timings', 'backup_write_counters', 'backups', 'finding_acknowledgements', 'idempotency_keys', 'migration_ledger', 'migration_timings', 'notification_deliveries', 'notification_outbox', 'rehearsal_globals', 'rollback_requests', 'run_approvals', 'run_events', 'run_logs', 'run_processes', 'run_reports', 'run_schema_baselines', 'run_snapshot_files', 'run_snapshots', 'run_transition_counts', 'runs', 'snapshot_blobs', 'window_overrides'];

async function tables(db: TestDatabase, exclude: string): Promise<string[]> {
  const result = await db.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> $1 ORDER BY 1`, [exclude]);
  return result.rows.map((r) => r.tablename as string);
}

describe('StarForge target schema (database/migrations)', () => {
  let db: TestDatabase;
  const migrate = (direction: 'up' | 'down') =>
    runner({
      databaseUrl: db.url,
      dir: resolve(PROJECT_ROOT, 'database/migrations'),
      migrationsTable: 'pgmigrations',
      direction,
      count: Infinity,
      singleTransaction: false,
      checkOrder: true,
      log: () => undefined,
    });

  async function assertFullSchema(): Promise<void> {
    assert.deepEqual(await tables(db, 'pgmigrations'), TARGET_TABLES);
    const ext = await db.query(`SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'`);
    assert.equal(ext.rowCount, 1, 'pgcrypto installed');
    const gin = await db.query(`
      SELECT i.indisvalid, am.amname, pg_get_indexdef(i.indexrelid) AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
      WHERE c.relname = 'hero_snapshots_raw_gin'`);
    assert.equal(gin.rowCount, 1, 'GIN index on hero_snapshots.raw exists');
    assert.equal(gin.rows[0].indisvalid, true, 'the CONCURRENTLY-built index is valid');
    assert.equal(gin.rows[0].amname, 'gin');
    assert.match(gin.rows[0].def, /\(raw\)/);
    const control = await db.query('SELECT paused FROM etl_control');
    assert.deepEqual(control.rows, [{ paused: false }], 'etl_control holds one unpaused row');
    const uuid = await db.query(`INSERT INTO hero_snapshots (user_id, raw) VALUES ('u1', '{}') RETURNING id`);
    assert.match(uuid.rows[0].id, /^[0-9a-f-]{36}$/, 'ids default to gen_random_uuid()');
    await db.query('DELETE FROM hero_snapshots');
  }

  before(async () => {
    db = await createTestDatabase('target_schema');
  });
  after(() => db.drop());

  test('up -> down -> up round-trips to the same catalog', async () => {
    const up = await migrate('up');
    assert.equal(up.length, 8);
    await assertFullSchema();
    const down = await migrate('down');
    assert.equal(down.length, 8);
    assert.deepEqual(await tables(db, 'pgmigrations'), [], 'every down removes what its up created');
    const ext = await db.query(`SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'`);
    assert.equal(ext.rowCount, 0);
    await migrate('up');
    await assertFullSchema();
  });

  test('etl_control refuses a second row', async () => {
    await assert.rejects(db.query('INSERT INTO etl_control (id, paused) VALUES (true, true)'), /duplicate key/);
    await assert.rejects(db.query('INSERT INTO etl_control (id, paused) VALUES (false, true)'), /check constraint/);
  });
});

describe('control schema (database/control-migrations)', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('control_schema');
  });
  after(() => db.drop());

  test('replicas starting together apply it exactly once', async () => {
    const results = await Promise.all([1, 2, 3, 4].map(() => migrateControlDatabase(db.url)));
    const files = (await readdir(CONTROL_MIGRATIONS_DIR)).filter((f) => f.endsWith('.js'));
    assert.equal(results.flat().length, files.length, 'one caller applied the migrations, the others found them done');
    assert.equal(results.filter((r) => r.length > 0).length, 1);
    assert.deepEqual(await tables(db, CONTROL_MIGRATIONS_TABLE), CONTROL_TABLES);
  });

  test('run_events is append-only: UPDATE, DELETE and TRUNCATE are refused', async () => {
    await db.query(`INSERT INTO run_events (environment, type, actor) VALUES ('staging', 'test.event', 'tester')`);
    await assert.rejects(db.query(`UPDATE run_events SET actor = 'mallory'`), /append-only/);
    await assert.rejects(db.query('DELETE FROM run_events'), /append-only/);
    await assert.rejects(db.query('TRUNCATE run_events'), /append-only/);
    const rows = await db.query('SELECT actor FROM run_events');
    assert.deepEqual(rows.rows, [{ actor: 'tester' }]);
  });

  test('finding_acknowledgements is append-only and holds one ack per finding and digest of a run', async () => {
    const run = (await db.query(`INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals)
                                 VALUES ('acks', 'preflight_failed', 'x', 'alice', 'd', '{any}') RETURNING id`)).rows[0].id as string;
    const insert = `INSERT INTO finding_acknowledgements (run_id, digest, finding_id, rule, reason, subject, role) VALUES ($1, $2, 'f1', 'ban-drop-column', $3, 'carol', 'sre')`;
    await db.query(insert, [run, 'd', 'unused']);
    await assert.rejects(db.query(insert, [run, 'd', 'again']), /finding_acknowledgements_once/);
    await db.query(insert, [run, 'd2', 'another digest']);
    await assert.rejects(db.query(insert, [run, 'd3', '  ']), /check constraint/);
    await assert.rejects(db.query(`UPDATE finding_acknowledgements SET reason = 'changed'`), /append-only/);
    await assert.rejects(db.query('DELETE FROM finding_acknowledgements'), /append-only/);
    await assert.rejects(db.query('TRUNCATE finding_acknowledgements'), /append-only/);
  });

  test('one active run per environment is enforced by the database', async () => {
    const insert = `INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals)
                    VALUES ('production', $1, 'x', 'alice', 'd', '{any}')`;
    await db.query(insert, ['awaiting_approval']);
    await assert.rejects(db.query(insert, ['created']), /runs_one_active_per_environment/);
    await db.query(insert, ['succeeded']);
    await db.query(insert, ['cancelled']);
  });

  test('up -> down -> up round-trips', async () => {
    await migrateControlDatabase(db.url, undefined, 'down');
    assert.deepEqual(await tables(db, CONTROL_MIGRATIONS_TABLE), []);
    const fn = await db.query(`SELECT 1 FROM pg_proc WHERE proname = 'run_events_append_only'`);
    assert.equal(fn.rowCount, 0);
    await migrateControlDatabase(db.url);
    assert.deepEqual(await tables(db, CONTROL_MIGRATIONS_TABLE), CONTROL_TABLES);
    const triggers = await db.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'run_events'::regclass AND NOT tgisinternal ORDER BY 1`);
    assert.deepEqual(triggers.rows.map((r) => r.tgname), ['run_events_count_transition', 'run_events_no_truncate', 'run_events_no_update_delete', 'run_events_queue_notification']);
  });
});
