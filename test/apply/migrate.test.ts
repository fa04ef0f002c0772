import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { listMigrationFiles } from '../../services/migrations/files.js';
import { diskSource } from '../../services/migrations/source.js';
import { migrate, type MigrateOptions } from '../../services/apply/migrate.js';
import { backoffDelay, nextRetryDelay } from '../../services/apply/lock-retry.js';
import { parseMigrationConfig, type EnvironmentConfig } from '../../services/environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, migrationSource, writeMigrations } from '../support/migrations.js';
import { emptyPublicSchema } from '../support/reset.js';

let db: TestDatabase;
let dir: string;
let env: EnvironmentConfig;

const BASE = {
  '1000_create-accounts': migrationSource(
    `CREATE TABLE accounts (id int PRIMARY KEY, email text); INSERT INTO accounts SELECT g, 'u' || g || '@x' FROM generate_series(1, 100) g`,
    'DROP TABLE accounts',
  ),
};

async function pending(): Promise<Array<{ name: string; sha256: string }>> {
  const exists = (await db.query(`SELECT to_regclass('public.pgmigrations') IS NOT NULL AS e`)).rows[0].e;
  const applied = new Set(exists ? (await db.query('SELECT name FROM pgmigrations')).rows.map((r) => r.name as string) : []);
  return (await listMigrationFiles(dir)).filter((f) => !applied.has(f.name)).map((f) => ({ name: f.name, sha256: f.sha256 }));
}

function options(overrides: Partial<MigrateOptions> = {}): Omit<MigrateOptions, 'migrations' | 'source'> & Partial<MigrateOptions> {
  return {
    environment: env,
    targetUrl: db.url,
    direction: 'up',
    budget: { attempts: 20, baseDelayMs: 50, maxDelayMs: 400, deadline: null },
    log: () => undefined,
    ...overrides,
  };
}

// migrate() itself, read from the directory (test/apply/sealed-snapshot.test.ts covers the sealed snapshot).
async function run(overrides: Partial<MigrateOptions> = {}) {
  const migrations = overrides.migrations ?? (await pending());
  const source = overrides.source ?? (async () => diskSource(dir, new Map(migrations.map((m) => [m.name, m.sha256]))));
  return migrate({ ...options(overrides), migrations, source });
}

async function columns(table: string): Promise<string[]> {
  const res = await db.query(`SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [table]);
  return res.rows.map((r) => r.column_name as string);
}

/** Holds a lock on accounts from another session for `ms`, released by the returned promise's end. */
async function holdLock(mode: 'ACCESS EXCLUSIVE' | 'ACCESS SHARE', ms: number): Promise<{ done: Promise<void> }> {
  const holder = new pg.Client({ connectionString: db.url, application_name: 'test-holder' });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query(`LOCK TABLE accounts IN ${mode} MODE`);
  const done = (async () => {
    await new Promise((r) => setTimeout(r, ms));
    await holder.query('COMMIT');
    await holder.end();
  })();
  return { done };
}

async function assertNoLeftovers(): Promise<void> {
  const sessions = await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'starforge-apply'`);
  assert.equal(sessions.rows[0].n, 0, 'the apply connection is closed');
  const locks = await db.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
  assert.equal(locks.rows[0].n, 0, 'no advisory lock is left behind');
  const idle = await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`);
  assert.equal(idle.rows[0].n, 0, 'no transaction left open');
}

before(async () => {
  db = await createTestDatabase('migrate');
  dir = await mkdtemp(join(tmpdir(), 'sf-migrate-'));
  env = parseMigrationConfig({ environments: { staging: { databaseUrlEnv: 'X', migrationsDir: dir, lockTimeoutMs: 200, statementTimeoutMs: 30_000 } } }, PROJECT_ROOT).staging!;
});

after(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await emptyPublicSchema(db);
});

describe('backoff', () => {
  test('grows exponentially, is capped, keeps at least half, and respects attempts and the deadline', () => {
    const budget = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000, deadline: null };
    assert.equal(backoffDelay(1, budget, () => 0), 50);
    assert.equal(backoffDelay(1, budget, () => 1), 100);
    assert.equal(backoffDelay(3, budget, () => 1), 400);
    assert.equal(backoffDelay(10, budget, () => 1), 1000);
    assert.equal(nextRetryDelay(5, budget), null, 'no sixth attempt');
    assert.equal(nextRetryDelay(1, { ...budget, deadline: new Date(Date.now() + 10) }), null, 'no retry past the deadline');
  });
});

describe('lock-safe migrate on real PostgreSQL', () => {
  test('a session holding ACCESS EXCLUSIVE for 3 s: retries with lock_timeout 200 ms, then succeeds', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(db.url, dir, 1);
    await writeMigrations(dir, { ...BASE, '2000_add-note': migrationSource('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note') });
    const { done } = await holdLock('ACCESS EXCLUSIVE', 3000);
    const lines: string[] = [];
    const started = performance.now();
    const result = await run({ log: (l) => lines.push(l) });
    const elapsed = performance.now() - started;
    await done;
    assert.equal(result.failure, null, JSON.stringify(result.failure));
    assert.ok(result.lockRetries >= 2, `retried (${result.lockRetries})`);
    assert.ok(elapsed >= 2500, 'it waited for the holder rather than running without a timeout');
    assert.deepEqual(result.steps.map((s) => s.name), ['2000_add-note']);
    assert.ok(result.steps[0]!.attempts > 1);
    assert.ok(lines.some((l) => /lock not available within 200 ms/.test(l)));
    assert.deepEqual(await columns('accounts'), ['id', 'email', 'note']);
    await assertNoLeftovers();
  });

  test('readers are never queued behind the waiting migration for much longer than lock_timeout', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(db.url, dir, 1);
    await writeMigrations(dir, { ...BASE, '2000_add-note': migrationSource('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note') });
    // A long transaction that has read the table: the ALTER must wait for it, and
    // every reader arriving meanwhile queues behind the ALTER's lock request.
    const { done } = await holdLock('ACCESS SHARE', 2500);
    const reader = new pg.Client({ connectionString: db.url, application_name: 'test-reader' });
    await reader.connect();
    let worst = 0;
    let reading = true;
    const readerLoop = (async () => {
      while (reading) {
        const t0 = performance.now();
        await reader.query('SELECT count(*) FROM accounts');
        worst = Math.max(worst, performance.now() - t0);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const result = await run();
    await done;
    reading = false;
    await readerLoop;
    await reader.end();
    assert.equal(result.failure, null);
    assert.ok(result.lockRetries >= 1, 'the migration had to wait');
    assert.ok(worst < 200 + 250, `worst reader wait ${Math.round(worst)} ms stays near lock_timeout (200 ms)`);
    await assertNoLeftovers();
  });

  test('retry budget exhausted: failed with lock-timeout, target unchanged', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(db.url, dir, 1);
    await writeMigrations(dir, { ...BASE, '2000_add-note': migrationSource('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note') });
    const { done } = await holdLock('ACCESS EXCLUSIVE', 2000);
    const result = await run({ budget: { attempts: 3, baseDelayMs: 50, maxDelayMs: 100, deadline: null } });
    await done;
    assert.equal(result.failure?.code, 'lock-timeout');
    assert.equal(result.failure?.sqlState, '55P03');
    assert.equal(result.failure?.migration, '2000_add-note');
    assert.equal(result.lockRetries, 2, 'three attempts = two retries');
    assert.deepEqual(await columns('accounts'), ['id', 'email']);
    assert.deepEqual((await db.query('SELECT name FROM pgmigrations')).rows.map((r) => r.name), ['1000_create-accounts']);
    await assertNoLeftovers();
  });

  test('a failing transactional migration leaves the target exactly as before', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(db.url, dir, 1);
    await writeMigrations(dir, {
      ...BASE,
      '2000_add-note': migrationSource('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note'),
      '3000_broken': migrationSource(`ALTER TABLE accounts ADD COLUMN score int; UPDATE accounts SET score = 1 / (id - id)`, 'SELECT 1'),
    });
    const result = await run();
    assert.deepEqual(result.steps.map((s) => s.name), ['2000_add-note'], 'the earlier migration committed on its own');
    assert.equal(result.failure?.code, 'migration-failed');
    assert.equal(result.failure?.migration, '3000_broken');
    assert.equal(result.failure?.sqlState, '22012');
    assert.equal(result.failure?.transactional, true);
    assert.equal(result.failure?.partial, null);
    assert.deepEqual(await columns('accounts'), ['id', 'email', 'note'], 'no score column: 3000 rolled back as a whole');
    await assertNoLeftovers();
  });

  test('a failing non-transactional migration is reported as partial, naming the INVALID index it left', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(db.url, dir, 1);
    await db.query(`UPDATE accounts SET email = 'same@x' WHERE id <= 2`);
    await writeMigrations(dir, {
      ...BASE,
      '2000_unique-email': migrationSource('CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email)', 'DROP INDEX CONCURRENTLY IF EXISTS accounts_email_key', { noTransaction: true }),
    });
    const result = await run();
    assert.equal(result.failure?.code, 'migration-failed');
    assert.equal(result.failure?.transactional, false);
    assert.equal(result.failure?.sqlState, '23505');
    assert.ok(result.failure?.partial?.some((p) => /INVALID index accounts_email_key on accounts/.test(p)), JSON.stringify(result.failure?.partial));
    await assertNoLeftovers();
  });

  test('down reverts exactly the given migrations, newest first, restoring the previous schema', async () => {
    await writeMigrations(dir, {
      ...BASE,
      '2000_add-note': migrationSource('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note'),
      '3000_add-score': migrationSource('ALTER TABLE accounts ADD COLUMN score int', 'ALTER TABLE accounts DROP COLUMN score'),
    });
    await applyMigrations(db.url, dir, 1);
    const before = await columns('accounts');
    const up = await run();
    assert.equal(up.failure, null);
    assert.deepEqual(await columns('accounts'), ['id', 'email', 'note', 'score']);
    const files = await listMigrationFiles(dir);
    const down = await run({ direction: 'down', migrations: files.filter((f) => f.name !== '1000_create-accounts').reverse().map((f) => ({ name: f.name, sha256: f.sha256 })) });
    assert.equal(down.failure, null);
    assert.deepEqual(down.steps.map((s) => s.name), ['3000_add-score', '2000_add-note']);
    assert.deepEqual(await columns('accounts'), before);
    assert.deepEqual((await db.query('SELECT name FROM pgmigrations')).rows.map((r) => r.name), ['1000_create-accounts']);
    await assertNoLeftovers();
  });

  test('a file changed after it was checked is refused before anything runs', async () => {
    await writeMigrations(dir, { ...BASE });
    const checked = await pending();
    await writeMigrations(dir, { '1000_create-accounts': migrationSource('CREATE TABLE accounts (id int PRIMARY KEY, email text, sneaky int)', 'DROP TABLE accounts') });
    const result = await run({ migrations: checked });
    assert.equal(result.failure?.code, 'content-changed');
    assert.equal((await db.query(`SELECT to_regclass('public.accounts') AS t`)).rows[0].t, null);
    await assertNoLeftovers();
  });

  test('another migrator holding the node-pg-migrate lock: nothing runs, no blocking wait', async () => {
    await writeMigrations(dir, BASE);
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    await other.query('SELECT pg_advisory_lock(7241865325823964)');
    try {
      const result = await run({ lockWaitMs: 600 });
      assert.equal(result.failure?.code, 'migration-lock-busy');
      assert.equal((await db.query(`SELECT to_regclass('public.accounts') AS t`)).rows[0].t, null);
    } finally {
      await other.end();
    }
    await assertNoLeftovers();
  });
});
