import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { scrubQuery, type LockWait } from '../../services/apply/blockers.js';
import { migrate, type MigrateOptions } from '../../services/apply/migrate.js';
import { listMigrationFiles } from '../../services/migrations/files.js';
import { diskSource } from '../../services/migrations/source.js';
import { parseMigrationConfig, type EnvironmentConfig } from '../../services/environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { bearer, type TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, migrationSource, writeMigrations } from '../support/migrations.js';
import { emptyPublicSchema } from '../support/reset.js';

const BASE = {
  '1000_create-accounts': migrationSource(
    `CREATE TABLE accounts (id int PRIMARY KEY, email text); INSERT INTO accounts SELECT g, 'u' || g || '@x' FROM generate_series(1, 100) g`,
    'DROP TABLE accounts',
  ),
};
const ADD_NOTE = migrationSource('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note');
// What the blocker is recognised by, and a secret its query carries that must never be shown.
const HOLDER_QUERY = `SELECT count(*) AS nightly_revenue_report FROM accounts WHERE email <> 'hunter2-secret'`;

let db: TestDatabase;
let dir: string;

type Holder = { client: pg.Client; pid: number; error: Promise<Error | null> };

/** Another session, application_name 'reporting-job', holding ACCESS SHARE on accounts. */
async function holder(url: string, mode: 'idle-in-transaction' | 'running'): Promise<Holder> {
  const client = new pg.Client({ connectionString: url, application_name: 'reporting-job' });
  client.on('error', () => undefined);
  await client.connect();
  const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  if (mode === 'idle-in-transaction') {
    await client.query('BEGIN');
    await client.query(HOLDER_QUERY);
    return { client, pid, error: Promise.resolve(null) };
  }
  // A long report in autocommit: the lock lives as long as the statement.
  const error = client.query(`${HOLDER_QUERY} AND pg_sleep(60) IS NOT NULL`).then(() => null, (err: Error) => err);
  await new Promise((r) => setTimeout(r, 200));
  return { client, pid, error };
}

async function pending(): Promise<Array<{ name: string; sha256: string }>> {
  const exists = (await db.query(`SELECT to_regclass('public.pgmigrations') IS NOT NULL AS e`)).rows[0].e;
  const applied = new Set(exists ? (await db.query('SELECT name FROM pgmigrations')).rows.map((r) => r.name as string) : []);
  return (await listMigrationFiles(dir)).filter((f) => !applied.has(f.name)).map((f) => ({ name: f.name, sha256: f.sha256 }));
}

function envWith(lockRetries: object): EnvironmentConfig {
  return parseMigrationConfig({ environments: { staging: { databaseUrlEnv: 'X', migrationsDir: dir, lockTimeoutMs: 200, statementTimeoutMs: 30_000, lockRetries } } }, PROJECT_ROOT).staging!;
}

async function run(env: EnvironmentConfig, waits: LockWait[], lines: string[], attempts = 3) {
  const migrations = await pending();
  const opts: MigrateOptions = {
    environment: env, targetUrl: db.url, direction: 'up', migrations,
    source: async () => diskSource(dir, new Map(migrations.map((m) => [m.name, m.sha256]))),
    budget: { attempts, baseDelayMs: 50, maxDelayMs: 100, deadline: null },
    log: (l) => lines.push(l),
    onLockWait: async (w) => { waits.push(w); },
  };
  return migrate(opts);
}

describe('scrubQuery', () => {
  test('literals, URLs and password-like values are removed before the 200-character cut', () => {
    assert.equal(scrubQuery(`SELECT * FROM t WHERE email = 'a@b.c' AND n = 1`), `SELECT * FROM t WHERE email = '…' AND n = 1`);
    assert.equal(scrubQuery(`ALTER ROLE app PASSWORD 'sup3r'`), `ALTER ROLE app PASSWORD <redacted>`);
    assert.equal(scrubQuery(`SELECT dblink('postgres://u:pw@db/x', 'q')`), `SELECT dblink('…', '…')`);
    assert.equal(scrubQuery(`SELECT 1 -- connect postgres://u:pw@db/x password=abc`), `SELECT 1 -- connect <url> password=<redacted>`);
    assert.equal(scrubQuery(`DO $body$ BEGIN PERFORM 'x'; END $body$`), `DO '…'`);
    assert.equal(scrubQuery(`SELECT 'it''s', E'\\n'`), `SELECT '…', '…'`);
    const long = `SELECT ${'x, '.repeat(150)}'${'s'.repeat(50)}`;
    assert.ok(scrubQuery(long).length <= 200);
    assert.ok(!scrubQuery(`SELECT 'unterminated secret`).includes('secret'), 'an unterminated literal (a cut query) is removed too');
  });
});

describe('named blockers in migrate() on real PostgreSQL', () => {
  before(async () => {
    db = await createTestDatabase('blockers');
    dir = await mkdtemp(join(tmpdir(), 'sf-blockers-'));
  });
  after(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'reporting-job'`);
    await emptyPublicSchema(db);
  });

  test('an idle-in-transaction session holding the table is named (pid, application, user, state, query) in every retry, the log and the failure', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(db.url, dir, 1);
    await writeMigrations(dir, { ...BASE, '2000_add-note': ADD_NOTE });
    const h = await holder(db.url, 'idle-in-transaction');
    const waits: LockWait[] = [];
    const lines: string[] = [];
    const result = await run(envWith({}), waits, lines);
    assert.equal(result.failure?.code, 'lock-timeout');
    assert.equal(waits.length, 3, 'one lock wait per attempt (two retries, then the final one)');
    for (const w of waits) {
      const b = w.blockers.find((x) => x.pid === h.pid);
      assert.ok(b, `attempt names pid ${h.pid}: ${JSON.stringify(w.blockers)}`);
      assert.equal(b.applicationName, 'reporting-job');
      assert.equal(b.user, 'postgres');
      assert.equal(b.state, 'idle in transaction');
      assert.ok((b.transactionAgeSeconds ?? -1) >= 0);
      assert.match(b.query, /nightly_revenue_report/);
      assert.ok(!b.query.includes('hunter2'), 'literals are scrubbed');
      assert.deepEqual(w.cancelled, [], 'nothing cancelled without cancelBlockersAfterMs');
    }
    const failure = result.failure!;
    assert.equal(failure.blockers?.[0]?.pid, h.pid);
    assert.match(failure.message, new RegExp(`pid ${h.pid} \\(reporting-job, user postgres, idle in transaction`));
    assert.match(failure.message, /nightly_revenue_report/);
    assert.ok(lines.some((l) => l.includes(`blocked by pid ${h.pid}`) && /retrying in/.test(l)), lines.join('\n'));
    assert.ok(!JSON.stringify({ waits, lines, failure }).includes('hunter2'));
    await h.client.query('ROLLBACK');
    await h.client.end();
  });

  test('cancelBlockersAfterMs cancels a long-running blocking statement (never terminates it) and the apply then succeeds', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(db.url, dir, 1);
    await writeMigrations(dir, { ...BASE, '2000_add-note': ADD_NOTE });
    const h = await holder(db.url, 'running');
    const waits: LockWait[] = [];
    const lines: string[] = [];
    const result = await run(envWith({ cancelBlockersAfterMs: 100 }), waits, lines, 10);
    assert.equal(result.failure, null, JSON.stringify(result.failure));
    assert.equal(result.steps.length, 1);
    const err = await h.error;
    assert.equal((err as pg.DatabaseError | null)?.code, '57014', 'the blocker\'s statement was cancelled');
    // Cancelled, not terminated: the blocker's session is still there and usable.
    assert.equal((await h.client.query('SELECT 1 AS one')).rows[0].one, 1);
    const cancelled = waits.flatMap((w) => w.cancelled).find((c) => c.pid === h.pid);
    if (cancelled) assert.equal(cancelled.cancelled, true);
    assert.ok(lines.some((l) => l.startsWith(`cancelled blocker pid ${h.pid}`)), lines.join('\n'));
    await h.client.end();
  });

  test('an idle-in-transaction blocker past cancelBlockersAfterMs is named as not cancellable (a cancel cannot reach it) and left alone', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(db.url, dir, 1);
    await writeMigrations(dir, { ...BASE, '2000_add-note': ADD_NOTE });
    const h = await holder(db.url, 'idle-in-transaction');
    await new Promise((r) => setTimeout(r, 150));
    const waits: LockWait[] = [];
    const result = await run(envWith({ cancelBlockersAfterMs: 100 }), waits, []);
    assert.equal(result.failure?.code, 'lock-timeout');
    const entry = waits.flatMap((w) => w.cancelled).find((c) => c.pid === h.pid);
    assert.ok(entry, JSON.stringify(waits));
    assert.equal(entry.cancelled, false);
    assert.match(entry.reason, /idle in transaction/);
    const state = await db.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [h.pid]);
    assert.equal(state.rows[0]?.state, 'idle in transaction', 'never terminated');
    await h.client.query('ROLLBACK');
    await h.client.end();
  });
});

describe('named blockers through the apply pipeline', () => {
  let app: ApplyApp;
  let t: TestApp;
  let appDir: string;
  const as = (who: string) => ({ authorization: bearer(who as never) });

  before(async () => {
    app = await startApplyApp({
      label: 'blockers',
      staging: 'lockTimeoutMs: 200, lockRetries: { attempts: 3, baseDelayMs: 50, maxDelayMs: 100 }, verify: { smokeEtl: false, watchMinutes: 0.01 }',
    });
    ({ t, dir: appDir } = app);
  });
  after(() => app.close());

  test('lock-timeout failure: migration.lock_wait audit event per attempt naming the blocker, the failure names it, and the workers paused by the run are resumed because nothing landed', async () => {
    await writeMigrations(appDir, FIXTURE_BASE);
    await applyMigrations(t.targets.staging.url, appDir, 2);
    await writeMigrations(appDir, { ...FIXTURE_BASE, '2000_add-note': FIXTURES.addNote });
    const created = await t.http().post('/v1/runs').set(as('alice')).send({ environment: 'staging', description: 'blocked' });
    assert.equal(created.status, 201, created.text);
    await t.settle();
    const id = created.body.id as string;
    const approved = await t.http().post(`/v1/runs/${id}/approvals`).set(as('bob')).send({ role: 'engineering', decision: 'approve' });
    assert.ok(['approved', 'scheduled'].includes(approved.body.status), approved.text);
    // ROW EXCLUSIVE (an open write): pg_dump's ACCESS SHARE passes, the ALTER waits.
    const h = new pg.Client({ connectionString: t.targets.staging.url, application_name: 'reporting-job' });
    await h.connect();
    const pid = (await h.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    await h.query('BEGIN');
    await h.query(`UPDATE accounts SET email = email WHERE email <> 'hunter2-secret' /* nightly_revenue_report */`);
    const res = await t.http().post(`/v1/runs/${id}/apply`).set(as('olga')).send({ confirm: 'staging' });
    assert.equal(res.status, 202, res.text);
    await t.settle();
    await h.query('ROLLBACK');
    await h.end();

    const run = (await t.http().get(`/v1/runs/${id}`).set(as('vic'))).body;
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'lock-timeout');
    assert.equal(run.error.blockers[0].pid, pid);
    assert.match(run.error.message, new RegExp(`pid ${pid} \\(reporting-job`));

    const events = (await t.control.query(`SELECT details FROM run_events WHERE run_id = $1 AND type = 'migration.lock_wait' ORDER BY id`, [id])).rows;
    assert.equal(events.length, 3, 'one audited lock wait per attempt');
    for (const e of events) {
      assert.equal(e.details.migration, '2000_add-note');
      const b = e.details.blockers.find((x: { pid: number }) => x.pid === pid);
      assert.ok(b, JSON.stringify(e.details));
      assert.match(b.query, /nightly_revenue_report/);
    }
    assert.deepEqual(events.map((e) => e.details.attempt), [1, 2, 3]);
    assert.equal(events[2].details.retryInMs, null, 'the last wait is not retried');

    const log = (await t.http().get(`/v1/runs/${id}/logs`).set(as('vic'))).text;
    assert.ok(log.includes(`blocked by pid ${pid} (reporting-job`), `the run log names the blocker: ${log}`);

    assert.equal((await t.targets.staging.query('SELECT paused FROM etl_control')).rows[0].paused, false, 'nothing landed: workers resumed');
    const report = (await t.http().get(`/v1/runs/${id}/report`).set(as('vic'))).body.apply.report;
    assert.equal(report.workers.resumed, true);
    assert.ok(report.notes.some((n: string) => /Nothing landed on the target, so the workers this run paused were resumed/.test(n)), report.notes.join(' | '));
    assert.ok(!report.notes.some((n: string) => /Workers stay paused/.test(n)));
    assert.ok(!JSON.stringify({ run, events, report }).includes('hunter2'));
  });
});
