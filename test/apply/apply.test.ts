import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { apiClient } from '../support/api-client.js';
import type { TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, migrationSource as migration, writeMigrations } from '../support/migrations.js';
import { cancelUnfinishedRuns, emptyPublicSchema } from '../support/reset.js';

// `staging` reads migrations from a temp directory the tests rewrite, backs
// up into a temp directory and pauses workers through etl_control.
let app: ApplyApp;
let t: TestApp;
let dir: string;
let backups: string;

const BASE = FIXTURE_BASE;
const ADD_NOTE = FIXTURES.addNote;
const ADD_SCORE = FIXTURES.addScore;

const { api, createAndApprove } = apiClient(() => t);

async function approvedRun(description = 'apply test'): Promise<string> {
  const { id, approved } = await createAndApprove(description);
  // Approved runs are scheduled at once (no windows configured here: due now).
  assert.ok(['approved', 'scheduled'].includes(approved.body.status), `preflight/approval: ${approved.text}`);
  return id;
}

async function applyAndSettle(id: string) {
  const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging', reason: 'test window' });
  assert.equal(res.status, 202, res.text);
  await t.settle();
  return (await api('get', `/v1/runs/${id}`, 'vic')).body;
}

async function columns(table: string): Promise<string[]> {
  const res = await t.targets.staging.query(`SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [table]);
  return res.rows.map((r) => r.column_name as string);
}

async function eventTypes(id: string): Promise<string[]> {
  return (await api('get', `/v1/runs/${id}/events`, 'vic')).body.map((e: { type: string }) => e.type);
}

async function assertNoLeftovers(): Promise<void> {
  const res = await t.targets.staging.query(`
    SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND (application_name LIKE 'starforge-run-%' OR application_name IN ('starforge-apply', 'starforge-pause')))::int AS sessions,
           (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))::int AS locks,
           (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%')::int AS open_tx`);
  assert.deepEqual(res.rows[0], { sessions: 0, locks: 0, open_tx: 0 }, 'no apply session, advisory lock or open transaction is left');
}

before(async () => {
  // These migrations have no hero_snapshots: no smoke ETL; a short watch (test/verify covers both).
  app = await startApplyApp({
    label: 'apply',
    staging: 'lockTimeoutMs: 200, lockRetries: { attempts: 40, baseDelayMs: 50, maxDelayMs: 300 }, verify: { smokeEtl: false, watchMinutes: 0.01 }',
  });
  ({ t, dir, backups } = app);
});

after(() => app.close());

afterEach(async () => {
  await cancelUnfinishedRuns(t);
  await emptyPublicSchema(t.targets.staging);
});

describe('apply pipeline', () => {
  test('approved run: workers paused, verified backup, migrations applied and ledgered, verified, workers resumed, succeeded', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(t.targets.staging.url, dir, 2);
    await writeMigrations(dir, { ...BASE, '2000_add-note': ADD_NOTE, '3000_add-score': ADD_SCORE });
    const id = await approvedRun();
    const run = await applyAndSettle(id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(await columns('accounts'), ['id', 'email', 'note', 'score']);

    // The backup is on the run, verified, and its file exists with that size.
    assert.match(run.backup.id, new RegExp(`^staging-${id.slice(0, 8)}-\\d{8}T\\d{6}Z$`));
    assert.ok(run.backup.verifiedAt);
    assert.ok(run.backup.sizeBytes > 0);
    assert.ok(existsSync(join(backups, `${run.backup.id}.dump`)));

    const types = await eventTypes(id);
    for (const type of ['apply.started', 'workers.paused', 'backup.verified', 'migration.applied', 'run.verifying', 'workers.resumed', 'run.succeeded']) {
      assert.ok(types.includes(type), `event ${type} in ${types.join(', ')}`);
    }
    // etl_control but no ETL activity tables (hero_snapshots, etl_errors): nothing to watch, no monitoring phase.
    assert.equal(types.includes('run.monitoring'), false, types.join(', '));
    assert.ok(types.indexOf('workers.paused') < types.indexOf('backup.verified'), 'pause before backup');
    assert.ok(types.indexOf('backup.verified') < types.indexOf('migration.applied'), 'backup before migrate');
    assert.equal(types.filter((x) => x === 'migration.applied').length, 2);

    const ledger = await t.control.query(`SELECT name, sha256 FROM migration_ledger WHERE run_id = $1 ORDER BY name`, [id]);
    assert.deepEqual(ledger.rows, run.migrations.map((m: { name: string; sha256: string }) => ({ name: m.name, sha256: m.sha256 })));
    const control = await t.targets.staging.query('SELECT paused FROM etl_control');
    assert.equal(control.rows[0].paused, false, 'workers resumed');

    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.equal(report.outcome, 'succeeded');
    assert.equal(report.backup.id, run.backup.id);
    assert.deepEqual(report.migrations.map((m: { name: string }) => m.name), ['2000_add-note', '3000_add-score']);
    assert.ok(report.verification.every((c: { status: string }) => c.status === 'pass' || c.status === 'skip'), JSON.stringify(report.verification));
    assert.equal(report.watch, null);
    assert.ok(report.notes.some((n: string) => /^No post-apply watch/.test(n)), report.notes.join(' | '));
    const md = await api('get', `/v1/runs/${id}/report?format=md`, 'vic');
    assert.match(md.text, new RegExp(`Backup: \`${run.backup.id}\``));

    const logs = await api('get', `/v1/runs/${id}/logs`, 'vic');
    assert.match(String(logs.headers['content-type']), /^text\/plain/);
    for (const phase of ['[workers]', '[backup]', '[migrate]', '[verify]']) assert.ok(logs.text.includes(phase), `${phase} in log`);
    assert.match(logs.text, /applied 2000_add-note/);
    assert.equal(logs.text.includes(t.targets.staging.url), false, 'no URL in the log');
    await assertNoLeftovers();
  });

  test('apply needs an operator, confirm = environment name, and an approved run', async () => {
    await writeMigrations(dir, { ...BASE });
    const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'gates' });
    await t.settle();
    const id = created.body.id as string;
    assert.equal((await api('post', `/v1/runs/${id}/apply`, 'carol', { confirm: 'staging' })).status, 403, 'sre alone is not an operator');
    const early = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' });
    assert.equal(early.status, 409);
    assert.match(early.body.detail, /awaiting_approval/);
    await api('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
    const wrong = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production' });
    assert.equal(wrong.status, 422);
    assert.ok(['approved', 'scheduled'].includes((await api('get', `/v1/runs/${id}`, 'vic')).body.status), 'nothing changed');
    assert.equal((await t.targets.staging.query(`SELECT to_regclass('public.accounts') AS t`)).rows[0].t, null);
  });

  test('drift after approval is refused with 409 and changes nothing', async () => {
    await writeMigrations(dir, { ...BASE });
    const id = await approvedRun('drift');
    await writeFile(join(dir, '1100_create-accounts.js'), migration('CREATE TABLE accounts (id int PRIMARY KEY, email text, sneaky int)', 'DROP TABLE accounts'));
    const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' });
    assert.equal(res.status, 409);
    assert.equal(res.body.code, 'drift');
    assert.match(res.body.detail, /changed since approval/);
    await t.settle();
    const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
    assert.ok(['approved', 'scheduled'].includes(run.status), run.status);
    assert.deepEqual((await t.targets.staging.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`)).rows[0].n, 0, 'target untouched');
    assert.ok((await eventTypes(id)).includes('apply.refused'));
  });

  test('a failing transactional migration: run failed naming migration and SQLSTATE, target as before, workers stay paused', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(t.targets.staging.url, dir, 2);
    // Fails only on real rows: the rehearsal copy holds the schema without data, so preflight passes.
    await writeMigrations(dir, { ...BASE, '2000_add-note': ADD_NOTE, '3000_broken': migration('ALTER TABLE accounts ADD COLUMN score int; UPDATE accounts SET score = 1 / (id - id)', 'ALTER TABLE accounts DROP COLUMN score') });
    const id = await approvedRun('data-dependent failure');
    const run = await applyAndSettle(id);
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'migration-failed');
    assert.equal(run.error.migration, '3000_broken');
    assert.equal(run.error.sqlState, '22012');
    assert.deepEqual(await columns('accounts'), ['id', 'email', 'note'], '2000 landed, 3000 rolled back whole');
    assert.equal((await t.targets.staging.query('SELECT paused FROM etl_control')).rows[0].paused, true, 'workers stay paused after a failure');
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.ok(report.notes.some((n: string) => /Workers stay paused/.test(n)));
    await assertNoLeftovers();
  });

  test('a table locked by another session: the apply retries under lock_timeout and succeeds', async () => {
    await writeMigrations(dir, BASE);
    await applyMigrations(t.targets.staging.url, dir, 2);
    await writeMigrations(dir, { ...BASE, '2000_add-note': ADD_NOTE });
    const id = await approvedRun('contended');
    const holder = new pg.Client({ connectionString: t.targets.staging.url });
    await holder.connect();
    await holder.query('BEGIN');
    // ROW EXCLUSIVE (an open write): pg_dump's ACCESS SHARE passes, the ALTER's ACCESS EXCLUSIVE waits.
    await holder.query('LOCK TABLE accounts IN ROW EXCLUSIVE MODE');
    const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' });
    assert.equal(res.status, 202);
    await new Promise((r) => setTimeout(r, 1500));
    await holder.query('COMMIT');
    await holder.end();
    await t.settle();
    const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.ok(report.lockRetries >= 1, `lock retries: ${report.lockRetries}`);
    assert.ok(report.migrations[0].attempts > 1);
    await assertNoLeftovers();
  });

  test('a run left applying by a dead process is marked interrupted at start-up', async () => {
    await writeMigrations(dir, { ...BASE });
    const id = await approvedRun('crash');
    await t.control.query(`UPDATE runs SET status = 'applying' WHERE id = $1`, [id]);
    await t.app.services.start();
    const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
    assert.equal(run.status, 'interrupted');
    assert.equal(run.error.code, 'interrupted');
  });
});

describe('rollback and restore', () => {
  // The approver approves the plan they looked at, by its digest.
  async function planDigest(id: string, mode: 'down' | 'restore'): Promise<string> {
    const plan = await api('get', `/v1/runs/${id}/rollback/plan?mode=${mode}`, 'carol');
    assert.equal(plan.status, 200, plan.text);
    return plan.body.digest as string;
  }

  async function succeededRun(files: Record<string, string>, description: string): Promise<string> {
    await writeMigrations(dir, BASE);
    await applyMigrations(t.targets.staging.url, dir, 2);
    await writeMigrations(dir, { ...BASE, ...files });
    const id = await approvedRun(description);
    const run = await applyAndSettle(id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    return id;
  }

  test('down: an operator asks, another sre approves; exactly this run is reverted and the schema is back', async () => {
    const id = await succeededRun({ '2000_add-note': ADD_NOTE, '3000_add-score': ADD_SCORE }, 'to roll back');
    assert.equal((await api('post', `/v1/runs/${id}/rollback`, 'carol', { mode: 'down', confirm: 'staging', reason: 'x' })).status, 403, 'sre alone cannot ask');
    assert.equal((await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'prod', reason: 'x' })).status, 422);
    const asked = await api('post', `/v1/runs/${id}/rollback`, 'root', { mode: 'down', confirm: 'staging', reason: 'errors after release' });
    assert.equal(asked.status, 202, asked.text);
    assert.equal(asked.body.status, 'awaiting_approval');
    assert.equal((await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'restore', confirm: 'staging', reason: 'again' })).status, 409, 'one open request per run');
    const self = await api('post', `/v1/runs/${id}/rollback/approvals`, 'root', { decision: 'approve', planDigest: await planDigest(id, 'down') });
    assert.equal(self.status, 403, 'the requester cannot approve their own rollback');
    const ok = await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', comment: 'go', planDigest: await planDigest(id, 'down') });
    assert.equal(ok.status, 201, ok.text);
    await t.settle();
    const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
    assert.equal(run.status, 'rolled_back', JSON.stringify(run.error));
    assert.deepEqual(await columns('accounts'), ['id', 'email']);
    assert.deepEqual((await t.targets.staging.query('SELECT name FROM pgmigrations ORDER BY id')).rows.map((r) => r.name), ['1000_etl-control', '1100_create-accounts']);
    assert.equal((await t.control.query('SELECT count(*)::int AS n FROM migration_ledger WHERE run_id = $1', [id])).rows[0].n, 0);
    const types = await eventTypes(id);
    for (const type of ['rollback.requested', 'rollback.approved', 'run.rolling_back', 'migration.reverted', 'run.rolled_back']) assert.ok(types.includes(type), type);
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback;
    assert.deepEqual([report.mode, report.outcome, report.reverted.map((m: { name: string }) => m.name)], ['down', 'succeeded', ['3000_add-score', '2000_add-note']]);
    const metrics = (await t.http().get('/metrics')).text;
    assert.match(metrics, /starforge_run_phase_duration_seconds_count\{environment="staging",phase="rollback"\} 1\b/);
    assert.match(metrics, /starforge_run_transitions_total\{environment="staging",from="rolling_back",to="rolled_back"\} 1\b/);
    await assertNoLeftovers();
  });

  test('down is refused when later migrations sit on top of the run', async () => {
    const id = await succeededRun({ '2000_add-note': ADD_NOTE }, 'underneath');
    await writeFile(join(dir, '3000_add-score.js'), ADD_SCORE);
    await applyMigrations(t.targets.staging.url, dir, 1);
    const res = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'x' });
    assert.equal(res.status, 409);
    assert.match(res.body.detail, /later changes sit on top/);
  });

  test('restore: the verified backup brings back dropped data', async () => {
    const drop = migration('DROP TABLE accounts; CREATE TABLE audit_log (id int PRIMARY KEY)', 'DROP TABLE audit_log; CREATE TABLE accounts (id int PRIMARY KEY, email text)', { comment: '// lint-ack: ban-drop-table retired in OPS-99' });
    const id = await succeededRun({ '2000_drop-accounts': drop }, 'drop it');
    assert.equal((await t.targets.staging.query(`SELECT to_regclass('public.accounts') AS t`)).rows[0].t, null, 'the table is gone');
    const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'restore', confirm: 'staging', reason: 'we needed that data' });
    assert.equal(asked.status, 202, asked.text);
    assert.equal((await api('post', `/v1/runs/${id}/rollback/approvals`, 'cora', { decision: 'approve', planDigest: await planDigest(id, 'restore') })).status, 201);
    await t.settle();
    const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
    assert.equal(run.status, 'restored', JSON.stringify(run.error));
    const rows = await t.targets.staging.query('SELECT count(*)::int AS n, min(email) AS first FROM accounts');
    assert.deepEqual(rows.rows[0], { n: 50, first: 'u10@x' }, 'all 50 rows are back');
    assert.equal((await t.targets.staging.query(`SELECT to_regclass('public.audit_log') AS t`)).rows[0].t, null, 'the table the run created is gone');
    assert.deepEqual((await t.targets.staging.query('SELECT name FROM pgmigrations ORDER BY id')).rows.map((r) => r.name), ['1000_etl-control', '1100_create-accounts']);
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback;
    assert.equal(report.backupId, run.backup.id);
    assert.deepEqual(report.dropped, ['public.audit_log']);
    assert.match((await t.http().get('/metrics')).text, /starforge_run_phase_duration_seconds_count\{environment="staging",phase="restore"\} 1\b/);
    await assertNoLeftovers();
  });

  test('a rejected request changes nothing', async () => {
    const id = await succeededRun({ '2000_add-note': ADD_NOTE }, 'keep it');
    await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'maybe' });
    const rejected = await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'reject', comment: 'not needed' });
    assert.equal(rejected.body.status, 'rejected');
    assert.equal((await api('get', `/v1/runs/${id}`, 'vic')).body.status, 'succeeded');
    assert.deepEqual(await columns('accounts'), ['id', 'email', 'note']);
  });
});
