// Run metrics move as a run goes through its phases via the API: transitions,
// runs by status, migrations applied, backups, phase durations, pending
// migrations, verification failures, last successful apply; and the HTTP
// histogram labels requests by route pattern, never by URL.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PROJECT_ROOT } from '../../database/paths.js';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, migrationSource as migration, writeMigrations } from '../support/migrations.js';
import { scrape } from './scrape.js';

let t: TestApp;
let qa: TestDatabase;
let dir: string;
let backups: string;

const ETL_CONTROL = migration(
  `CREATE TABLE etl_control (id boolean PRIMARY KEY DEFAULT true CHECK (id), paused boolean NOT NULL DEFAULT false, reason text, changed_by text, changed_at timestamptz NOT NULL DEFAULT now()); INSERT INTO etl_control DEFAULT VALUES`,
  'DROP TABLE etl_control',
);
const ACCOUNTS = migration('CREATE TABLE accounts (id int PRIMARY KEY, email text)', 'DROP TABLE accounts');
const BASE = { '1000_etl-control': ETL_CONTROL, '1100_create-accounts': ACCOUNTS };
const PENDING = {
  ...BASE,
  '2000_add-note': migration('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note'),
  '3000_add-score': migration('ALTER TABLE accounts ADD COLUMN score int', 'ALTER TABLE accounts DROP COLUMN score'),
};

const as = (who: Subject) => ({ authorization: bearer(who) });

async function approvedRun(environment: string): Promise<string> {
  const created = await t.http().post('/v1/runs').set(as('alice')).send({ environment, description: 'metrics test' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const id = created.body.id as string;
  const approved = await t.http().post(`/v1/runs/${id}/approvals`).set(as('bob')).send({ role: 'engineering', decision: 'approve' });
  assert.equal(approved.status, 201, approved.text);
  assert.ok(['approved', 'scheduled'].includes(approved.body.status), `preflight/approval: ${approved.text}`);
  return id;
}

async function applyAndSettle(id: string, environment: string) {
  const res = await t.http().post(`/v1/runs/${id}/apply`).set(as('olga')).send({ confirm: environment, overrideWindow: true, reason: 'metrics test' });
  assert.equal(res.status, 202, res.text);
  await t.settle();
  return (await t.http().get(`/v1/runs/${id}`).set(as('vic'))).body;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-metrics-migrations-'));
  backups = await mkdtemp(join(tmpdir(), 'sf-metrics-backups-'));
  qa = await createTestDatabase('metrics_qa');
  const common = `migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 }`;
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', ${common},
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, verify: { smokeEtl: false, watchMinutes: 0 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', ${common},
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, verify: { tables: ['no_such_table'], smokeEtl: false, watchMinutes: 0 } },
    qa: { databaseUrlEnv: 'QA_DATABASE_URL', ${common}, notify: [{ kind: 'webhook', urlEnv: 'QA_HOOK_URL' }],
      backup: { method: 'external', createCommand: 'echo snapshot storage is full >&2; exit 3', verifyCommand: 'true' }, verify: { smokeEtl: false, watchMinutes: 0 } } } };`;
  // The notifier is not started here (no listen): the hook URL is never called.
  t = await startTestApp({ label: 'metrics_runs', migrationConfigSource: config, env: { QA_DATABASE_URL: qa.url, QA_HOOK_URL: 'http://127.0.0.1:9/hook' } });
  await writeMigrations(dir, BASE);
  for (const db of [t.targets.staging, t.targets.production, qa]) await applyMigrations(db.url, dir, 2);
  await writeMigrations(dir, PENDING);
});

after(async () => {
  await t?.close();
  await qa?.drop();
  await rm(dir, { recursive: true, force: true });
  await rm(backups, { recursive: true, force: true });
});

describe('counters exported at 0 before their first event', () => {
  test('every transition the state machine allows, per environment, at 0 before any run', async () => {
    const m = await scrape(t);
    for (const environment of ['staging', 'production', 'qa']) {
      const series = m.all('starforge_run_transitions_total', { environment });
      assert.ok(series.length >= 40, `${environment}: ${series.length} transition series`);
      assert.ok(series.every((s) => s.value === 0), `${environment}: all 0 before the first run`);
      for (const [from, to] of <Array<[string, string]>>[['none', 'created'], ['applying', 'failed'], ['verifying', 'failed'], ['applying', 'interrupted'], ['verifying', 'verification_failed'], ['monitoring', 'degraded'], ['rolling_back', 'rolled_back']]) {
        assert.equal(m.value('starforge_run_transitions_total', { environment, from, to }), 0, `${environment} ${from} -> ${to}`);
      }
      assert.equal(m.all('starforge_run_transitions_total', { environment, from: 'created', to: 'succeeded' }).length, 0, 'only transitions that can happen');
      for (const check of ['expected-tables', 'expected-indexes', 'invalid-indexes', 'smoke-etl', 'new-etl-errors', 'migrations-applied']) {
        assert.equal(m.value('starforge_verification_check_failures_total', { environment, check }), 0, `${environment} ${check}`);
      }
      for (const name of ['starforge_backup_failures_total', 'starforge_backups_total', 'starforge_etl_snapshots_failed_total', 'starforge_etl_snapshots_processed_total', 'starforge_migrations_applied_total']) {
        assert.equal(m.value(name, { environment }), 0, `${name}{${environment}}`);
      }
    }
    for (const phase of ['preflight', 'backup', 'migrate', 'verify', 'total', 'rollback', 'restore']) {
      assert.equal(m.value('starforge_run_phase_duration_seconds_count', { environment: 'qa', phase }), 0, `phase ${phase} histogram at 0`);
    }
    assert.equal(m.value('starforge_backup_duration_seconds_count', { environment: 'qa', outcome: 'failure' }), 0);
    for (const outcome of ['delivered', 'retrying', 'failed']) {
      assert.equal(m.value('starforge_notifications_total', { environment: 'qa', kind: 'webhook', outcome }), 0, outcome);
    }
    assert.equal(m.all('starforge_notifications_total', { environment: 'staging' }).length, 0, 'staging notifies nobody');
  });

  test('the verification check ids exported at 0 are the ones verify.ts produces', async () => {
    const { VERIFICATION_CHECKS } = await import('../../services/metrics/known-series.js');
    const source = await readFile(join(PROJECT_ROOT, 'services/verify/verify.ts'), 'utf8');
    const produced = [...source.matchAll(/\bcheck\('([a-z-]+)'/g)].map((m) => m[1]!);
    assert.ok(produced.length >= 8);
    assert.deepEqual([...new Set(produced)].sort(), [...VERIFICATION_CHECKS].sort());
  });
});

describe('run metrics', () => {
  test('a run applied through the API moves transitions, statuses, migrations, backup and phase metrics', async () => {
    const before = await scrape(t);
    assert.equal(before.value('starforge_pending_migrations', { environment: 'staging' }), 2);
    assert.equal(before.value('starforge_migrations_applied_total', { environment: 'staging' }), 0);
    assert.equal(before.value('starforge_backups_total', { environment: 'staging' }), 0);
    assert.ok(before.all('starforge_run_transitions_total', { environment: 'staging' }).every((s) => s.value === 0));
    assert.equal(before.value('starforge_last_successful_apply_timestamp_seconds', { environment: 'staging' }), undefined, 'no sample before the first success');
    assert.equal(before.value('starforge_runs', { environment: 'staging', status: 'succeeded' }), 0);

    const id = await approvedRun('staging');
    const waiting = await scrape(t);
    const status = (await t.http().get(`/v1/runs/${id}`).set(as('vic'))).body.status as string;
    assert.equal(waiting.value('starforge_runs', { environment: 'staging', status }), 1, `the run shows as ${status}`);
    assert.equal(waiting.value('starforge_run_transitions_total', { environment: 'staging', from: 'none', to: 'created' }), 1);
    assert.equal(waiting.value('starforge_run_transitions_total', { environment: 'staging', from: 'awaiting_approval', to: 'approved' }), 1);
    assert.equal(waiting.value('starforge_approvals_waiting', { environment: 'staging' }), 0, 'approved: nobody waits');
    assert.ok((waiting.value('starforge_run_phase_duration_seconds_count', { environment: 'staging', phase: 'preflight' }) ?? 0) >= 1, 'preflight timed');

    const run = await applyAndSettle(id, 'staging');
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const after = await scrape(t);
    const transitions = after.all('starforge_run_transitions_total', { environment: 'staging' });
    const into = (to: string) => transitions.filter((s) => s.labels.to === to).reduce((sum, s) => sum + s.value, 0);
    for (const to of ['created', 'preflight_running', 'awaiting_approval', 'approved', 'applying', 'verifying', 'succeeded']) {
      assert.equal(into(to), 1, `one transition into ${to}: ${JSON.stringify(transitions)}`);
    }
    // No ETL activity tables on this target: nothing to watch, so no monitoring phase.
    assert.equal(into('monitoring'), 0);
    assert.equal(after.value('starforge_run_transitions_total', { environment: 'staging', from: 'verifying', to: 'succeeded' }), 1);
    assert.equal(after.value('starforge_run_transitions_total', { environment: 'staging', from: 'monitoring', to: 'succeeded' }), 0);
    assert.equal(after.value('starforge_runs', { environment: 'staging', status: 'succeeded' }), 1);
    assert.equal(after.value('starforge_runs', { environment: 'staging', status }), 0);
    assert.equal(after.value('starforge_migrations_applied_total', { environment: 'staging' }), 2);
    assert.equal(after.value('starforge_lock_timeout_retries_total', { environment: 'staging' }), 0);
    assert.equal(after.value('starforge_pending_migrations', { environment: 'staging' }), 0);
    assert.equal(after.value('starforge_backups_total', { environment: 'staging' }), 1);
    assert.equal(after.value('starforge_backup_failures_total', { environment: 'staging' }), 0);
    assert.ok(run.backup.sizeBytes > 0);
    assert.equal(after.value('starforge_backup_bytes_total', { environment: 'staging' }), run.backup.sizeBytes);
    assert.equal(after.value('starforge_backup_last_size_bytes', { environment: 'staging' }), run.backup.sizeBytes);
    assert.equal(after.value('starforge_backup_duration_seconds_count', { environment: 'staging', outcome: 'success' }), 1);
    for (const phase of ['backup', 'migrate', 'verify', 'total']) {
      assert.equal(after.value('starforge_run_phase_duration_seconds_count', { environment: 'staging', phase }), 1, `${phase} observed once`);
      assert.ok((after.value('starforge_run_phase_duration_seconds_sum', { environment: 'staging', phase }) ?? -1) > 0, `${phase} took some time`);
    }
    // The whole apply took at least as long as its backup and migrate phases.
    const sum = (phase: string) => after.value('starforge_run_phase_duration_seconds_sum', { environment: 'staging', phase })!;
    assert.ok(sum('total') >= sum('backup') + sum('migrate'));
    const last = after.value('starforge_last_successful_apply_timestamp_seconds', { environment: 'staging' });
    assert.ok(last !== undefined && Math.abs(last - Date.now() / 1000) < 120, `last success ${last} is now`);
    assert.equal(after.all('starforge_active_run_status_age_seconds', { environment: 'staging' }).length, 0, 'no active run left');
    assert.ok(after.all('starforge_verification_check_failures_total', { environment: 'staging' }).every((s) => s.value === 0), 'no check failed');
  });

  test('the last successful apply keeps its time when that run is rolled back', async () => {
    const before = await scrape(t);
    const last = before.value('starforge_last_successful_apply_timestamp_seconds', { environment: 'staging' });
    assert.ok(last !== undefined, 'the previous test applied a run on staging');
    const runs = (await t.http().get('/v1/runs?environment=staging&status=succeeded').set(as('vic'))).body.items as Array<{ id: string }>;
    assert.equal(runs.length, 1);
    const id = runs[0]!.id;
    const asked = await t.http().post(`/v1/runs/${id}/rollback`).set(as('olga')).send({ mode: 'down', confirm: 'staging', reason: 'metrics test' });
    assert.equal(asked.status, 202, asked.text);
    const approved = await t.http().post(`/v1/runs/${id}/rollback/approvals`).set(as('carol')).send({ decision: 'approve', planDigest: asked.body.planDigest });
    assert.ok([200, 201, 202].includes(approved.status), approved.text);
    await t.settle();
    assert.equal((await t.http().get(`/v1/runs/${id}`).set(as('vic'))).body.status, 'rolled_back');
    const after = await scrape(t);
    assert.equal(after.value('starforge_runs', { environment: 'staging', status: 'succeeded' }), 0, 'no run is succeeded now');
    assert.equal(after.value('starforge_last_successful_apply_timestamp_seconds', { environment: 'staging' }), last, 'the last successful apply is still when it was');
    assert.equal(after.value('starforge_run_transitions_total', { environment: 'staging', from: 'rolling_back', to: 'rolled_back' }), 1);
  });

  test('a failed verification is counted by check and shows as a transition to verification_failed', async () => {
    const id = await approvedRun('production');
    const run = await applyAndSettle(id, 'production');
    assert.equal(run.status, 'verification_failed', JSON.stringify(run.error));
    const report = (await t.http().get(`/v1/runs/${id}/report`).set(as('vic'))).body.apply.report;
    const failedChecks = (report.verification as Array<{ id: string; status: string }>).filter((c) => c.status === 'fail').map((c) => c.id);
    assert.ok(failedChecks.includes('expected-tables'), `failed checks: ${failedChecks.join(', ')}`);
    const m = await scrape(t);
    for (const check of failedChecks) assert.equal(m.value('starforge_verification_check_failures_total', { environment: 'production', check }), 1, check);
    assert.equal(m.value('starforge_run_transitions_total', { environment: 'production', from: 'verifying', to: 'verification_failed' }), 1);
    assert.equal(m.value('starforge_runs', { environment: 'production', status: 'verification_failed' }), 1);
    assert.equal(m.value('starforge_migrations_applied_total', { environment: 'production' }), 2, 'the migrations did land');
    assert.equal(m.value('starforge_last_successful_apply_timestamp_seconds', { environment: 'production' }), undefined);
  });

  test('a backup that fails is counted, with its duration, and nothing is migrated', async () => {
    const id = await approvedRun('qa');
    const run = await applyAndSettle(id, 'qa');
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'backup-failed');
    const m = await scrape(t);
    assert.equal(m.value('starforge_backup_failures_total', { environment: 'qa' }), 1);
    assert.equal(m.value('starforge_backups_total', { environment: 'qa' }), 0);
    assert.equal(m.value('starforge_backup_duration_seconds_count', { environment: 'qa', outcome: 'failure' }), 1);
    assert.equal(m.value('starforge_run_phase_duration_seconds_count', { environment: 'qa', phase: 'backup' }), 1);
    assert.equal(m.value('starforge_run_phase_duration_seconds_count', { environment: 'qa', phase: 'total' }), 1);
    assert.equal(m.value('starforge_run_phase_duration_seconds_count', { environment: 'qa', phase: 'migrate' }), 0, 'never migrated');
    assert.equal(m.value('starforge_migrations_applied_total', { environment: 'qa' }), 0);
    assert.equal(m.value('starforge_pending_migrations', { environment: 'qa' }), 2);
    assert.equal(m.value('starforge_run_transitions_total', { environment: 'qa', from: 'applying', to: 'failed' }), 1);
  });

  test('an active run reports how long it has been in its status; approvals waiting counts runs awaiting approval', async () => {
    const created = await t.http().post('/v1/runs').set(as('alice')).send({ environment: 'qa', description: 'waits for approval' });
    assert.equal(created.status, 201, created.text);
    await t.settle();
    // Backdate the status change as if the run had waited for ten minutes.
    await t.control.query(`UPDATE runs SET updated_at = now() - interval '10 minutes' WHERE id = $1`, [created.body.id]);
    const m = await scrape(t);
    assert.equal(m.value('starforge_approvals_waiting', { environment: 'qa' }), 1);
    const age = m.value('starforge_active_run_status_age_seconds', { environment: 'qa', status: 'awaiting_approval' });
    assert.ok(age !== undefined && age >= 600 && age < 700, `age ${age}`);
    const cancelled = await t.http().post(`/v1/runs/${created.body.id}/cancel`).set(as('alice')).send({ reason: 'done' });
    assert.equal(cancelled.status, 200, cancelled.text);
    const later = await scrape(t);
    assert.equal(later.value('starforge_approvals_waiting', { environment: 'qa' }), 0);
    assert.equal(later.value('starforge_run_transitions_total', { environment: 'qa', from: 'awaiting_approval', to: 'cancelled' }), 1);
  });

  test('database figures are cached between scrapes for a few seconds', async () => {
    const first = await scrape(t);
    const cancelledBefore = first.value('starforge_runs', { environment: 'staging', status: 'cancelled' })!;
    await t.control.query(`INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals) VALUES ('staging', 'cancelled', 'x', 'alice', 'd', '{any}')`);
    const cached = await t.http().get('/metrics');
    assert.match(cached.text, new RegExp(`starforge_runs\\{environment="staging",status="cancelled"\\} ${cancelledBefore}\\n`), 'served from the cache');
    const fresh = await scrape(t);
    assert.equal(fresh.value('starforge_runs', { environment: 'staging', status: 'cancelled' }), cancelledBefore + 1);
  });
});

describe('HTTP request metrics', () => {
  test('requests are labelled by route pattern, never by URL or id; unknown routes share one label', async () => {
    const id = '6f1c1f7e-0b43-4d7c-9a55-0d3b8a1e2f44';
    assert.equal((await t.http().get(`/v1/runs/${id}`).set(as('vic'))).status, 404);
    assert.equal((await t.http().get(`/v1/runs/${id}/events`).set(as('vic'))).status, 404);
    assert.equal((await t.http().get('/no/such/path/12345').set(as('vic'))).status, 404);
    assert.equal((await t.http().get('/v1/runs?limit=5').set(as('vic'))).status, 200);
    const m = await scrape(t);
    const http = m.all('starforge_http_request_duration_seconds_count');
    assert.ok(http.length > 0);
    assert.equal(m.value('starforge_http_request_duration_seconds_count', { method: 'GET', route: '/v1/runs/:id', status_code: '404' }), 1);
    assert.equal(m.value('starforge_http_request_duration_seconds_count', { method: 'GET', route: '/v1/runs/:id/events', status_code: '404' }), 1);
    assert.ok((m.value('starforge_http_request_duration_seconds_count', { method: 'GET', route: '/v1/runs', status_code: '200' }) ?? 0) >= 1);
    assert.equal(m.value('starforge_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_code: '404' }), 1);
    for (const s of http) {
      assert.ok(!s.labels.route!.includes(id) && !s.labels.route!.includes('12345') && !s.labels.route!.includes('?'), `route label ${s.labels.route}`);
      assert.ok(s.labels.route === 'unmatched' || s.labels.route!.startsWith('/'), `route label ${s.labels.route}`);
    }
  });
});
