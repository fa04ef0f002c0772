// Generic by default (issue 16 item 7), against real PostgreSQL: a project
// whose target is a plain application schema (no etl_* tables) gets no ETL
// noise: preflight lists the smoke ETL, the worker pause and the watch as not
// configured (status skip, no finding, no note), the apply pauses nothing,
// watches nothing and goes from verification straight to succeeded, and its
// rollback does not report a failed resume. A StarForge-schema target still
// gets all of them.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { PROJECT_ROOT } from '../../database/paths.js';
import { apiClient } from '../support/api-client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { applyMigrations, migrationSource, writeMigrations } from '../support/migrations.js';
import { cancelUnfinishedRuns } from '../support/reset.js';

let t: TestApp;
let appDir: string;
let forgeDir: string;
let backups: string;
let repo: Record<string, string>;

// A plain application: users and orders, nothing of the StarForge ETL.
const APP = {
  '1000_users': migrationSource(
    `CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL); INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 200) g`,
    'DROP TABLE users',
  ),
  '1100_orders': migrationSource('CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users, total numeric)', 'DROP TABLE orders'),
};
const APP_PENDING = {
  '2000_users-name': migrationSource('ALTER TABLE users ADD COLUMN name text', 'ALTER TABLE users DROP COLUMN name'),
  '2100_orders-user-idx': migrationSource('CREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id)', 'DROP INDEX CONCURRENTLY orders_user_idx', { noTransaction: true }),
};

const { api, runOf } = apiClient(() => t);
const eventTypes = async (id: string) => (await t.control.query('SELECT type FROM run_events WHERE run_id = $1 ORDER BY id', [id])).rows.map((r) => r.type as string);
const preflightOf = async (id: string) => (await api('get', `/v1/runs/${id}/preflight`, 'vic')).body.report;
const checkStatus = (checks: Array<{ id: string; status: string }>) => Object.fromEntries(checks.map((c) => [c.id, c.status]));

async function preflighted(environment: 'staging' | 'production'): Promise<string> {
  const created = await api('post', '/v1/runs', 'alice', { environment, description: 'generic target' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const run = await runOf(created.body.id);
  assert.equal(run.status, 'awaiting_approval', JSON.stringify(run.error));
  return run.id as string;
}

async function applied(id: string, environment: 'staging' | 'production'): Promise<void> {
  for (const [who, role] of environment === 'production' ? [['bob', 'engineering'], ['carol', 'sre']] as const : [['bob', 'engineering']] as const) {
    assert.equal((await api('post', `/v1/runs/${id}/approvals`, who, { role, decision: 'approve' })).status, 201);
  }
  const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: environment, reason: 'generic target' });
  assert.equal(res.status, 202, res.text);
  await t.settle();
}

before(async () => {
  appDir = await mkdtemp(join(tmpdir(), 'sf-generic-app-'));
  forgeDir = await mkdtemp(join(tmpdir(), 'sf-generic-forge-'));
  backups = await mkdtemp(join(tmpdir(), 'sf-generic-backups-'));
  const repoDir = resolve(PROJECT_ROOT, 'database/migrations');
  repo = {};
  for (const file of (await readdir(repoDir)).sort()) repo[basename(file, '.js')] = await readFile(join(repoDir, file), 'utf8');
  // Staging: everything at its defaults (smokeEtl 'auto', workers sql, a 1-minute watch), as a newcomer would configure it.
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(appDir)}, approvals: { required: ['any'] },
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(forgeDir)}, windows: [],
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 },
      verify: { watchMinutes: 0.05 } } } };`;
  t = await startTestApp({ label: 'generic', migrationConfigSource: config });
});

after(async () => {
  await t.close();
  for (const d of [appDir, forgeDir, backups]) await rm(d, { recursive: true, force: true });
});

afterEach(() => cancelUnfinishedRuns(t));

describe('a target without the StarForge ETL', () => {
  test('preflight lists the smoke ETL, the worker pause and the watch as not configured, with no ETL warning or note', async () => {
    await writeMigrations(appDir, APP);
    await applyMigrations(t.targets.staging.url, appDir, 2);
    await writeMigrations(appDir, { ...APP, ...APP_PENDING });
    const id = await preflighted('staging');
    const report = await preflightOf(id);
    const status = checkStatus(report.checks);
    assert.equal(status['rehearsal-smoke-etl'], 'skip', JSON.stringify(report.checks));
    assert.equal(status['etl-workers'], 'skip');
    assert.equal(status['etl-watch'], 'skip');
    for (const c of report.checks.filter((c: { status: string }) => c.status === 'skip')) assert.match(c.detail, /^Not configured: /);
    // Both applied migrations ran outside the service: no ledger entry to compare their files with, and the check says so.
    const checksums = report.checks.find((c: { id: string }) => c.id === 'applied-checksums');
    assert.equal(checksums.status, 'pass');
    assert.equal(checksums.detail, 'None of the 2 applied migration(s) has a ledger entry; 2 were applied outside the service (no ledger entry), so their files could not be checked: 1000_users, 1100_orders.');
    assert.deepEqual(report.checks.filter((c: { status: string }) => c.status === 'warn' || c.status === 'fail'), [], 'no check warns or fails');
    const etlText = /etl|smoke|pgcrypto|watch/i;
    assert.deepEqual(report.findings.filter((f: { rule: string; message: string }) => etlText.test(f.rule) || etlText.test(f.message)), []);
    assert.deepEqual(report.notes.filter((n: string) => etlText.test(n)), [], report.notes.join(' | '));
    const md = (await api('get', `/v1/runs/${id}/preflight?format=md`, 'vic')).text;
    assert.match(md, /\| rehearsal-smoke-etl \| SKIP \| Not configured: /);
    assert.doesNotMatch(md, /WARN/);
  });

  test('apply pauses nothing, watches nothing and ends succeeded right after verification; its rollback reports no failed resume', async () => {
    const id = await preflighted('staging');
    await applied(id, 'staging');
    const run = await runOf(id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal(run.watch ?? null, null, 'no watch window');
    const types = await eventTypes(id);
    assert.ok(types.includes('run.verifying') && types.includes('run.succeeded'), types.join(', '));
    for (const absent of ['workers.paused', 'workers.resumed', 'run.monitoring']) assert.ok(!types.includes(absent), `${absent} in ${types.join(', ')}`);
    const path = (await t.control.query(`SELECT from_status, to_status FROM run_events WHERE run_id = $1 AND to_status = 'succeeded'`, [id])).rows;
    assert.deepEqual(path, [{ from_status: 'verifying', to_status: 'succeeded' }]);
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.equal(report.outcome, 'succeeded');
    assert.equal(report.workers, null);
    assert.equal(report.watch, null);
    assert.ok(report.notes.some((n: string) => /^Workers: not configured/.test(n)), report.notes.join(' | '));
    assert.ok(report.notes.some((n: string) => /^No post-apply watch: .*nothing to watch/.test(n)), report.notes.join(' | '));
    const verification = checkStatus(report.verification);
    assert.equal(verification['smoke-etl'], 'skip');
    assert.equal(verification['new-etl-errors'], 'skip');
    assert.deepEqual(report.verification.filter((c: { status: string }) => c.status === 'warn' || c.status === 'fail').map((c: { id: string }) => c.id), []);
    const md = (await api('get', `/v1/runs/${id}/report?format=md`, 'vic')).text;
    assert.match(md, /Smoke ETL: \*\*NOT CONFIGURED\*\*/);
    assert.match(md, /Workers: not configured/);
    assert.doesNotMatch(md, /WARN|NOT RUN|NOT resumed/);
    assert.equal((await t.targets.staging.query(`SELECT to_regclass('public.orders_user_idx') IS NOT NULL AS built`)).rows[0].built, true);

    const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'undo' });
    assert.equal(asked.status, 202, asked.text);
    assert.equal((await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: asked.body.planDigest })).status, 201);
    await t.settle();
    assert.equal((await runOf(id)).status, 'rolled_back');
    const rollback = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback;
    assert.equal(rollback.outcome, 'succeeded');
    assert.ok(!rollback.notes.some((n: string) => /Resuming workers failed|does not exist/.test(n)), rollback.notes.join(' | '));
    assert.doesNotMatch((await api('get', `/v1/runs/${id}/report?format=md`, 'vic')).text, /failed: relation/);
  });
});

describe('a StarForge-schema target', () => {
  test('still gets the smoke ETL (rehearsal and verification), the worker pause and the watch', async () => {
    await writeMigrations(forgeDir, repo);
    await applyMigrations(t.targets.production.url, forgeDir, Object.keys(repo).length);
    await writeMigrations(forgeDir, { ...repo, '1800000000000_add-note': migrationSource('ALTER TABLE hero_snapshots ADD COLUMN note text', 'ALTER TABLE hero_snapshots DROP COLUMN note') });
    const id = await preflighted('production');
    const status = checkStatus((await preflightOf(id)).checks);
    assert.equal(status['rehearsal-smoke-etl'], 'pass');
    assert.equal(status['etl-workers'], 'pass');
    assert.equal(status['etl-watch'], 'pass');
    await applied(id, 'production');
    const run = await runOf(id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const types = await eventTypes(id);
    for (const present of ['workers.paused', 'workers.resumed', 'run.monitoring']) assert.ok(types.includes(present), `${present} missing from ${types.join(', ')}`);
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.equal(checkStatus(report.verification)['smoke-etl'], 'pass');
    assert.equal(checkStatus(report.verification)['new-etl-errors'], 'pass');
    assert.ok(report.watch, 'the ETL was watched');
    assert.equal(report.watch.observed, true);
  });
});
