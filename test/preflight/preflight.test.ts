import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { withDatabase } from '../../database/db.js';
import { PREFLIGHT_LOCK_CLASS, releaseRunLock, tryRunLock } from '../../database/sql/locks.js';
import { createEphemeralDatabase, ownerTag, sweepOrphanedRehearsals } from '../../services/preflight/ephemeral.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { adminQuery, adminUrl } from '../support/db.js';
import { applyMigrations, migrationSource, writeMigrations as writeFiles } from '../support/migrations.js';

// Each test writes its own migrations into one directory the `staging`
// environment reads; `production` points at the same directory, and the
// `limited` environment reaches the production target as a role that may not
// create extensions.
let t: TestApp;
let dir: string;
const limitedRole = `sf_limited_${randomBytes(3).toString('hex')}`;
const limitedPassword = `pw_${randomBytes(8).toString('hex')}`;

const migration = migrationSource;
const writeMigrations = (files: Record<string, string>) => writeFiles(dir, files);

async function resetTarget(db = t.targets.staging): Promise<void> {
  // Recreated as PostgreSQL 15 creates it: owned by pg_database_owner, USAGE for everyone.
  await db.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC; DROP EXTENSION IF EXISTS pgcrypto;');
}

const applyOnTarget = (count: number, db = t.targets.staging) => applyMigrations(db.url, dir, count);

async function createRun(environment: string, description = 'preflight test') {
  const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment, description });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  const run = (await t.http().get(`/v1/runs/${res.body.id}`).set('authorization', bearer('vic'))).body;
  const report = (await t.http().get(`/v1/runs/${run.id}/preflight`).set('authorization', bearer('vic'))).body.report;
  return { run, report };
}

async function cancel(id: string): Promise<void> {
  await t.http().post(`/v1/runs/${id}/cancel`).set('authorization', bearer('olga')).send({});
}

async function rehearsalDatabases(): Promise<string[]> {
  const res = await adminQuery(`SELECT datname FROM pg_database WHERE datname LIKE 'sf\\_rehearsal\\_${ownerTag(t.config.databaseUrl!)}%'`);
  return res.rows.map((r) => r.datname as string);
}

async function tablesOf(db = t.targets.staging): Promise<string[]> {
  const res = await db.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
  return res.rows.map((r) => r.tablename as string);
}

const errorRules = (report: { findings: Array<{ rule: string; severity: string }> }) => report.findings.filter((f) => f.severity === 'error').map((f) => f.rule);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-preflight-migrations-'));
  await adminQuery(`CREATE ROLE ${limitedRole} LOGIN PASSWORD '${limitedPassword}'`);
  const limitedUrl = new URL(adminUrl());
  limitedUrl.username = limitedRole;
  limitedUrl.password = limitedPassword;
  const config = `
    const env = (urlEnv) => ({ databaseUrlEnv: urlEnv, migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] }, preflight: { longTransactionSeconds: 1 } });
    export default { environments: { staging: env('STAGING_DATABASE_URL'), production: env('PRODUCTION_DATABASE_URL'), limited: env('LIMITED_DATABASE_URL') } };`;
  t = await startTestApp({ label: 'preflight', migrationConfigSource: config, env: { LIMITED_DATABASE_URL: 'postgres://placeholder@127.0.0.1:1/x' } });
  // The limited environment reaches the production target database as the limited role.
  t.config.targetUrls.limited = withDatabase(limitedUrl.toString(), t.targets.production.name);
});

after(async () => {
  await t.close();
  await adminQuery(`DROP ROLE IF EXISTS ${limitedRole}`);
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  const active = await t.control.query(`SELECT id FROM runs WHERE status IN ('awaiting_approval', 'approved', 'created', 'preflight_running')`);
  for (const { id } of active.rows) await cancel(id);
  await resetTarget(t.targets.staging);
  await resetTarget(t.targets.production);
});

describe('rehearsal on a throw-away copy', () => {
  test('a failing migration is an error finding with its name, statement and SQLSTATE; the target is untouched and the copy is gone', async () => {
    await writeMigrations({
      '1000_create-accounts': migration('CREATE TABLE accounts (id int PRIMARY KEY, balance int)', 'DROP TABLE accounts'),
      '2000_seed-accounts': migration('INSERT INTO accounts VALUES (1, 10)', 'DELETE FROM accounts'),
      '3000_broken': migration('UPDATE accounts SET balance = balance / 0', 'SELECT 1'),
    });
    await applyOnTarget(1);
    const before = await t.targets.staging.query('SELECT name FROM pgmigrations ORDER BY id');
    const { run, report } = await createRun('staging');
    assert.equal(run.status, 'preflight_failed');
    assert.equal(run.error.code, 'rehearsal-failed');
    const failure = report.findings.find((f: { rule: string }) => f.rule === 'rehearsal-failed');
    assert.equal(failure.migration, '3000_broken');
    assert.match(failure.statement, /balance \/ 0/);
    assert.match(failure.message, /division by zero/);
    assert.match(failure.message, /SQLSTATE 22012/);
    const failedStep = report.rehearsal.steps.find((s: { ok: boolean }) => !s.ok);
    assert.deepEqual([failedStep.phase, failedStep.migration, failedStep.error.sqlState], ['up', '3000_broken', '22012']);
    assert.equal(report.rehearsal.seededFrom, 'pg_dump');
    // The target: same history, same tables, no seeded row.
    assert.deepEqual((await t.targets.staging.query('SELECT name FROM pgmigrations ORDER BY id')).rows, before.rows);
    assert.deepEqual(await tablesOf(), ['accounts', 'pgmigrations']);
    assert.equal((await t.targets.staging.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n, 0);
    assert.deepEqual(await rehearsalDatabases(), [], 'the throw-away database is dropped after a failure');
  });

  test('a successful rehearsal runs up, down, up and drops its copy', async () => {
    await writeMigrations({
      '1000_create-accounts': migration('CREATE TABLE accounts (id int PRIMARY KEY)', 'DROP TABLE accounts'),
      '2000_create-ledger': migration('CREATE TABLE ledger (id int PRIMARY KEY)', 'DROP TABLE ledger'),
    });
    const { run, report } = await createRun('staging');
    assert.equal(run.status, 'awaiting_approval', JSON.stringify(report.findings));
    assert.deepEqual(report.rehearsal.steps.map((s: { phase: string; migration: string }) => `${s.phase}:${s.migration}`), [
      'up:1000_create-accounts', 'up:2000_create-ledger', 'down:2000_create-ledger', 'down:1000_create-accounts',
      'up-again:1000_create-accounts', 'up-again:2000_create-ledger',
    ]);
    assert.deepEqual(await tablesOf(), [], 'the target got nothing');
    assert.deepEqual(await rehearsalDatabases(), []);
  });

  test('a down migration that does not undo its up is reported (reversibility)', async () => {
    await writeMigrations({ '1000_create-accounts': migration('CREATE TABLE accounts (id int)', 'SELECT 1') });
    const { run, report } = await createRun('production');
    assert.equal(run.status, 'preflight_failed');
    // The schema diff names what the down leaves; the second up failing on it is part of that finding.
    const finding = report.findings.find((f: { rule: string }) => f.rule === 'irreversible-down');
    assert.ok(finding, JSON.stringify(report.findings));
    assert.match(finding.message, /leaves table public\.accounts\. Re-applying it then failed: relation "accounts" already exists/);
    assert.equal(report.rehearsal.reversibility['1000_create-accounts'], 'irreversible');
  });

  test('a failing down migration is reported, and can be acknowledged with a reason', async () => {
    await writeMigrations({ '1000_create-accounts': migration('CREATE TABLE accounts (id int)', 'DROP TABLE no_such_table') });
    const failed = await createRun('staging');
    assert.equal(failed.run.status, 'preflight_failed');
    assert.ok(failed.report.findings.some((f: { rule: string }) => f.rule === 'rehearsal-down-failed'));
    await cancel(failed.run.id);
    await writeMigrations({
      // An ack covers the statement after it: the down's failing one.
      '1000_create-accounts': migration('CREATE TABLE accounts (id int)', 'DROP TABLE no_such_table').replace('export const down', '// lint-ack: rehearsal-down-failed restore from backup instead\nexport const down'),
    });
    const acked = await createRun('staging');
    assert.equal(acked.run.status, 'awaiting_approval');
    const finding = acked.report.findings.find((f: { rule: string }) => f.rule === 'rehearsal-down-failed');
    assert.deepEqual([finding.severity, finding.acknowledged], ['warning', { reason: 'restore from backup instead', by: null, at: null, via: 'file' }]);
  });

  test('without pg_dump the copy is built by replaying the history, and the report says so', async () => {
    await writeMigrations({
      '1000_create-accounts': migration('CREATE TABLE accounts (id int PRIMARY KEY)', 'DROP TABLE accounts'),
      '2000_create-ledger': migration('CREATE TABLE ledger (id int PRIMARY KEY)', 'DROP TABLE ledger'),
    });
    await applyOnTarget(1);
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    let result;
    try {
      result = await createRun('staging');
    } finally {
      process.env.PATH = path;
    }
    const { report } = result;
    assert.equal(report.rehearsal.seededFrom, 'replay');
    assert.ok(report.notes.some((n: string) => /pg_dump is not available; replayed the applied history/.test(n)));
    assert.ok(report.rehearsal.steps.every((s: { ok: boolean }) => s.ok), 'the rehearsal itself worked');
    assert.deepEqual(errorRules(report), ['backup-tool-unavailable'], 'no pg_dump also means no verified backup');
  });
});

describe('lint through the pipeline', () => {
  test('a blocking index build on an existing table fails preflight; its safe twin passes', async () => {
    await writeMigrations({ '1000_create-accounts': migration('CREATE TABLE accounts (id int, email text)', 'DROP TABLE accounts') });
    await applyOnTarget(1);
    await writeMigrations({
      '1000_create-accounts': migration('CREATE TABLE accounts (id int, email text)', 'DROP TABLE accounts'),
      '2000_index-email': migration('CREATE INDEX accounts_email ON accounts (email)', 'DROP INDEX accounts_email'),
    });
    const bad = await createRun('staging');
    assert.equal(bad.run.status, 'preflight_failed');
    const finding = bad.report.findings.find((f: { rule: string }) => f.rule === 'require-concurrent-index-creation');
    assert.equal(finding.migration, '2000_index-email');
    assert.match(finding.statement, /CREATE INDEX accounts_email/);
    const impact = bad.report.impact.migrations.find((m: { migration: string }) => m.migration === '2000_index-email');
    assert.equal(impact.strongestLock, 'SHARE');
    await cancel(bad.run.id);

    await writeMigrations({
      '1000_create-accounts': migration('CREATE TABLE accounts (id int, email text)', 'DROP TABLE accounts'),
      '2000_index-email': migration('CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_email ON accounts (email)', 'DROP INDEX CONCURRENTLY IF EXISTS accounts_email', { noTransaction: true }),
    });
    const safe = await createRun('staging');
    assert.equal(safe.run.status, 'awaiting_approval', JSON.stringify(safe.report.findings));
    const safeImpact = safe.report.impact.migrations.find((m: { migration: string }) => m.migration === '2000_index-email');
    assert.deepEqual([safeImpact.transactional, safeImpact.strongestLock], [false, 'SHARE UPDATE EXCLUSIVE']);
  });

  test('a destructive change fails unless acknowledged with a reason, which the report shows', async () => {
    await writeMigrations({ '1000_create-accounts': migration('CREATE TABLE accounts (id int, legacy text)', 'DROP TABLE accounts') });
    await applyOnTarget(1);
    const drop = migration('ALTER TABLE accounts DROP COLUMN legacy', 'ALTER TABLE accounts ADD COLUMN legacy text');
    await writeMigrations({ '1000_create-accounts': migration('CREATE TABLE accounts (id int, legacy text)', 'DROP TABLE accounts'), '2000_drop-legacy': drop });
    const bad = await createRun('staging');
    assert.deepEqual(errorRules(bad.report), ['ban-drop-column']);
    await cancel(bad.run.id);
    await writeMigrations({
      '1000_create-accounts': migration('CREATE TABLE accounts (id int, legacy text)', 'DROP TABLE accounts'),
      '2000_drop-legacy': `// lint-ack: ban-drop-column unused since release 41 (OPS-12)\n${drop}`,
    });
    const acked = await createRun('staging');
    assert.equal(acked.run.status, 'awaiting_approval');
    const finding = acked.report.findings.find((f: { rule: string }) => f.rule === 'ban-drop-column');
    assert.deepEqual(finding.acknowledged, { reason: 'unused since release 41 (OPS-12)', by: null, at: null, via: 'file' });
    const md = await t.http().get(`/v1/runs/${acked.run.id}/preflight?format=md`).set('authorization', bearer('vic'));
    assert.match(md.text, /acknowledged: unused since release 41 \(OPS-12\)/);
  });
});

describe('impact estimates', () => {
  test('tables touched carry row estimates, size, lock and rewrite; the total feeds the scheduler', async () => {
    await writeMigrations({ '1000_create-events': migration('CREATE TABLE events (id bigint PRIMARY KEY, payload text)', 'DROP TABLE events') });
    await applyOnTarget(1);
    await t.targets.staging.query(`INSERT INTO events SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g; ANALYZE events;`);
    await writeMigrations({
      '1000_create-events': migration('CREATE TABLE events (id bigint PRIMARY KEY, payload text)', 'DROP TABLE events'),
      '2000_events-payload-type': migration('ALTER TABLE events ALTER COLUMN payload TYPE varchar(300)', 'ALTER TABLE events ALTER COLUMN payload TYPE text'),
    });
    const { run, report } = await createRun('staging');
    assert.equal(run.status, 'preflight_failed', 'changing a column type on an existing table is a lint error');
    const table = report.impact.tables.find((x: { table: string }) => x.table === 'public.events');
    assert.equal(table.exists, true);
    assert.ok(table.rows >= 19000 && table.rows <= 21000, `reltuples ~20000, got ${table.rows}`);
    assert.ok(table.bytes > 4_000_000, `size from pg_total_relation_size, got ${table.bytes}`);
    const m = report.impact.migrations.find((x: { migration: string }) => x.migration === '2000_events-payload-type');
    assert.equal(m.strongestLock, 'ACCESS EXCLUSIVE');
    assert.equal(m.statements[0].rewritesTable, true);
    assert.ok(m.statements[0].estimatedMs > 0, 'a rewrite of a non-empty table takes time');
    // The scheduler fits the migrations and the pre-apply backup together.
    assert.equal(report.impact.migrationsEstimatedMs, report.impact.migrations.reduce((s: number, x: { estimatedMs: number }) => s + x.estimatedMs, 0));
    assert.equal(report.impact.totalEstimatedMs, report.impact.migrationsEstimatedMs + report.impact.backup.estimatedMs);
  });
});

describe('checks against the real target', () => {
  test('pgcrypto under a role that may not create it is an error naming the runbook mitigation', async () => {
    await writeMigrations({ '1000_pgcrypto': migration('CREATE EXTENSION IF NOT EXISTS pgcrypto', 'DROP EXTENSION IF EXISTS pgcrypto') });
    const { run, report } = await createRun('limited');
    assert.equal(run.status, 'preflight_failed');
    const finding = report.findings.find((f: { rule: string }) => f.rule === 'extension-privilege');
    assert.ok(finding, JSON.stringify(report.findings));
    assert.match(finding.message, new RegExp(`role ${limitedRole} lacks the CREATE privilege`));
    assert.match(finding.message, /application-side UUID generation/);
    assert.equal(report.checks.find((c: { id: string }) => c.id === 'extension:pgcrypto').status, 'fail');
    assert.equal(JSON.stringify(report).includes(limitedPassword), false, 'no password in the report');
    await cancel(run.id);

    // The same migration as a role that may create it: no finding.
    const ok = await createRun('production');
    assert.equal(ok.report.checks.find((c: { id: string }) => c.id === 'extension:pgcrypto').status, 'pass');
    assert.equal(ok.report.findings.some((f: { rule: string }) => f.rule === 'extension-privilege'), false);
  });

  test('a target the role may not read is a clear 422, not a 500, and writes nothing', async () => {
    await writeMigrations({ '1000_create-accounts': migration('CREATE TABLE accounts (id int)', 'DROP TABLE accounts') });
    await t.targets.production.query('CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)');
    const before = (await t.control.query('SELECT count(*)::int AS n FROM runs')).rows[0].n;
    const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'limited', description: 'no grant' });
    assert.equal(res.status, 422, res.text);
    assert.match(res.headers['content-type']!, /application\/problem\+json/);
    assert.match(res.body.detail, /permission denied for table pgmigrations.*SQLSTATE 42501/);
    assert.equal(res.text.includes(limitedPassword), false);
    assert.equal((await t.control.query('SELECT count(*)::int AS n FROM runs')).rows[0].n, before);
  });

  test('a long-running transaction on the target is listed with pid, duration and query', async () => {
    await writeMigrations({ '1000_create-accounts': migration('CREATE TABLE accounts (id int)', 'DROP TABLE accounts') });
    const holder = new pg.Client({ connectionString: t.targets.staging.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 42 AS the_long_one');
      const pid = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await new Promise((r) => setTimeout(r, 1500));
      const { report } = await createRun('staging');
      const finding = report.findings.find((f: { rule: string; message: string }) => f.rule === 'long-running-transaction' && f.message.includes(`pid ${pid}`));
      assert.ok(finding, JSON.stringify(report.findings));
      assert.equal(finding.severity, 'warning');
      assert.match(finding.message, /pg_backend_pid|SELECT/);
      assert.equal(report.checks.find((c: { id: string }) => c.id === 'long-transactions').status, 'warn');
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });

  test('an applied migration whose file changed since it ran (ledger) is drift', async () => {
    const original = migration('CREATE TABLE accounts (id int)', 'DROP TABLE accounts');
    await writeMigrations({ '1000_create-accounts': original });
    await applyOnTarget(1);
    await t.control.query(`INSERT INTO migration_ledger (environment, name, sha256) VALUES ('staging', '1000_create-accounts', encode(sha256($1::bytea), 'hex'))`, [original]);
    await writeMigrations({
      '1000_create-accounts': migration('CREATE TABLE accounts (id int, extra int)', 'DROP TABLE accounts'),
      '2000_create-ledger': migration('CREATE TABLE ledger (id int)', 'DROP TABLE ledger'),
    });
    const { run, report } = await createRun('staging');
    assert.equal(run.status, 'preflight_failed');
    const drift = report.findings.find((f: { rule: string }) => f.rule === 'applied-migration-changed');
    assert.equal(drift.migration, '1000_create-accounts');
    await t.control.query(`DELETE FROM migration_ledger`);
  });

  test('a migration added before an already-applied one is an order finding', async () => {
    await writeMigrations({
      '1000_create-accounts': migration('CREATE TABLE accounts (id int)', 'DROP TABLE accounts'),
      '3000_create-ledger': migration('CREATE TABLE ledger (id int)', 'DROP TABLE ledger'),
      '4000_create-audit': migration('CREATE TABLE audit (id int)', 'DROP TABLE audit'),
    });
    await applyOnTarget(2);
    const created = await createRun('staging');
    assert.equal(created.run.status, 'awaiting_approval');
    await writeFile(join(dir, '2000_late-arrival.js'), migration('CREATE TABLE late (id int)', 'DROP TABLE late'));
    const rerun = await t.http().post(`/v1/runs/${created.run.id}/preflight`).set('authorization', bearer('alice')).send();
    assert.equal(rerun.status, 202);
    await t.settle();
    const run = (await t.http().get(`/v1/runs/${created.run.id}`).set('authorization', bearer('vic'))).body;
    assert.equal(run.status, 'preflight_failed');
    assert.equal(run.error.code, 'migration-order');
    assert.match(run.error.message, /2000_late-arrival.*sorts before.*3000_create-ledger/);
  });
});

describe('throw-away databases never outlive their preflight', () => {
  test('a crash mid-rehearsal leaves a copy that the next start sweeps; live and foreign copies are kept', async () => {
    const owner = ownerTag(t.config.databaseUrl!);
    const serverUrl = t.config.databaseUrl!;
    const crashedRun = '0a0a0a0a-1111-4222-8333-444444444444';
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/test/support/rehearsal-crash-child.js'), serverUrl, t.config.databaseUrl!, owner, crashedRun], { stdio: ['ignore', 'pipe', 'inherit'] });
    const orphan = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d) => {
        const match = /READY (\S+)/.exec(String(d));
        if (match) resolve(match[1]!);
      });
      child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    // A live rehearsal (its run's lock held) and one owned by another control database.
    const liveRun = '0b0b0b0b-1111-4222-8333-444444444444';
    const holder = new pg.Client({ connectionString: t.config.databaseUrl! });
    await holder.connect();
    const live = await createEphemeralDatabase(serverUrl, owner, liveRun);
    const foreign = await createEphemeralDatabase(serverUrl, 'ffffff', crashedRun);
    try {
      await holder.query(tryRunLock(PREFLIGHT_LOCK_CLASS, liveRun).text, tryRunLock(PREFLIGHT_LOCK_CLASS, liveRun).values);

      assert.ok((await rehearsalDatabases()).includes(orphan), 'the crash left its copy behind');
      // What a (re)started service does before serving: sweep, then resume orphaned preflights.
      await t.app.services.start();
      const left = await rehearsalDatabases();
      assert.equal(left.includes(orphan), false);
      assert.ok(left.includes(live.name), 'a live rehearsal is not swept');
      const all = await adminQuery(`SELECT 1 FROM pg_database WHERE datname = $1`, [foreign.name]);
      assert.equal(all.rowCount, 1, "another service's rehearsal is not swept");
      const pool = new pg.Pool({ connectionString: t.config.databaseUrl!, max: 1 });
      const quiet = { info() {}, warn() {}, error() {}, debug() {} };
      assert.deepEqual(await sweepOrphanedRehearsals(serverUrl, owner, pool, quiet), [], 'a second sweep finds nothing to do');
      await pool.end();
    } finally {
      await holder.query(releaseRunLock(PREFLIGHT_LOCK_CLASS, liveRun).text, releaseRunLock(PREFLIGHT_LOCK_CLASS, liveRun).values);
      await holder.end();
      await live.drop();
      await foreign.drop();
    }
  });
});
