// Reports whose notes agree with what happened, against real PostgreSQL: a
// rollback that removed etl_control says the workers were not configured (not
// that resuming failed); a verification failure whose workers were resumed
// does not say they stay paused.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { apiClient } from '../support/api-client.js';
import type { TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { applyMigrations, FIXTURES, writeMigrations } from '../support/migrations.js';
import { cancelUnfinishedRuns, emptyPublicSchema } from '../support/reset.js';

let app: ApplyApp;
let t: TestApp;
let dir: string;

const { api, runOf } = apiClient(() => t);

async function appliedRun(environment: 'staging' | 'production'): Promise<string> {
  const created = await api('post', '/v1/runs', 'alice', { environment, description: 'report notes' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const id = created.body.id as string;
  for (const [who, role] of environment === 'production' ? [['bob', 'engineering'], ['carol', 'sre']] as const : [['bob', 'engineering']] as const) {
    assert.equal((await api('post', `/v1/runs/${id}/approvals`, who, { role, decision: 'approve' })).status, 201);
  }
  const applied = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: environment, reason: 'report notes' });
  assert.equal(applied.status, 202, applied.text);
  await t.settle();
  return id;
}

before(async () => {
  // Both environments apply (production too, with its two approvals), with the same backup and workers.
  app = await startApplyApp({
    label: 'report-notes',
    config: ({ dir, backups }) => {
      const common = `migrationsDir: ${JSON.stringify(dir)}, backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000, resumeOnFailure: true }`;
      return `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', ${common}, approvals: { required: ['any'] }, verify: { smokeEtl: false, watchMinutes: 0 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', ${common}, windows: [],
      verify: { smokeEtl: false, watchMinutes: 0, indexes: ['public.accounts_never_built_idx'] } } } };`;
    },
  });
  ({ t, dir } = app);
});

after(() => app.close());

afterEach(async () => {
  await cancelUnfinishedRuns(t);
  for (const db of [t.targets.staging, t.targets.production]) await emptyPublicSchema(db);
});

describe('report notes agree with what happened', () => {
  test('a clean rollback that removed etl_control: workers not configured, not "resuming failed"', async () => {
    await writeMigrations(dir, { '1100_create-accounts': FIXTURES.accounts });
    await applyMigrations(t.targets.staging.url, dir, 1);
    await writeMigrations(dir, { '1100_create-accounts': FIXTURES.accounts, '1200_etl-control': FIXTURES.etlControl, '1300_add-note': FIXTURES.addNote });
    const id = await appliedRun('staging');
    assert.equal((await runOf(id)).status, 'succeeded');
    const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'undo' });
    assert.equal(asked.status, 202, asked.text);
    assert.equal((await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: asked.body.planDigest })).status, 201);
    await t.settle();
    assert.equal((await runOf(id)).status, 'rolled_back');
    const rollback = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback;
    assert.equal(rollback.outcome, 'succeeded');
    assert.ok(!rollback.notes.some((n: string) => /Resuming workers failed|does not exist/.test(n)), rollback.notes.join(' | '));
    assert.ok(rollback.notes.some((n: string) => /not configured/.test(n)), rollback.notes.join(' | '));
    const md = (await api('get', `/v1/runs/${id}/report?format=md`, 'vic')).text;
    assert.doesNotMatch(md, /failed: relation/);
  });

  test('a verification failure whose workers were resumed (resumeOnFailure) does not say they stay paused', async () => {
    await writeMigrations(dir, { '1000_etl-control': FIXTURES.etlControl, '1100_create-accounts': FIXTURES.accounts });
    await applyMigrations(t.targets.production.url, dir, 2);
    await writeMigrations(dir, { '1000_etl-control': FIXTURES.etlControl, '1100_create-accounts': FIXTURES.accounts, '1300_add-note': FIXTURES.addNote });
    const id = await appliedRun('production');
    assert.equal((await runOf(id)).status, 'verification_failed');
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.equal(report.workers.resumed, true);
    assert.equal((await t.targets.production.query('SELECT paused FROM etl_control')).rows[0].paused, false);
    assert.ok(!report.notes.some((n: string) => /stay paused/.test(n)), report.notes.join(' | '));
    assert.ok(report.notes.some((n: string) => /were resumed after the failure/.test(n)), report.notes.join(' | '));
    const md = (await api('get', `/v1/runs/${id}/report?format=md`, 'vic')).text;
    assert.doesNotMatch(md, /stay paused/);
    assert.match(md, /Outcome: \*\*VERIFICATION_FAILED\*\*/);
  });
});
