import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { PROJECT_ROOT } from '../../database/paths.js';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { applyMigrations, migrationSource, writeMigrations } from '../support/migrations.js';

// Both environments read the StarForge migrations (copied into a temp
// directory so a test can add one); production also expects an index no
// migration creates.
let t: TestApp;
let dir: string;
let repo: Record<string, string>;

const as = (who: Subject) => ({ authorization: bearer(who) });

async function api(method: 'get' | 'post', path: string, who: Subject, body?: object) {
  const req = t.http()[method](path).set(as(who));
  return body === undefined ? req : req.send(body);
}

async function runStatus(id: string): Promise<string> {
  return (await api('get', `/v1/runs/${id}`, 'vic')).body.status;
}

/** Creates, approves and applies a run on `environment`; returns its id once the apply finished. */
async function applyRun(environment: 'staging' | 'production', onMonitoring?: () => Promise<void>): Promise<string> {
  const created = await api('post', '/v1/runs', 'alice', { environment, description: 'verify test' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const id = created.body.id as string;
  for (const [who, role] of environment === 'production' ? [['bob', 'engineering'], ['carol', 'sre']] as const : [['bob', 'engineering']] as const) {
    const res = await api('post', `/v1/runs/${id}/approvals`, who, { role, decision: 'approve' });
    assert.equal(res.status, 201, res.text);
  }
  const applied = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: environment, reason: 'verify test' });
  assert.equal(applied.status, 202, applied.text);
  if (onMonitoring) {
    for (let i = 0; (await runStatus(id)) !== 'monitoring'; i++) {
      assert.ok(i < 400, `never reached monitoring (${await runStatus(id)})`);
      await new Promise((r) => setTimeout(r, 25));
    }
    await onMonitoring();
  }
  await t.settle();
  return id;
}

async function report(id: string) {
  return (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
}

const checkOf = (r: { verification: Array<{ id: string }> }, id: string) => r.verification.find((c) => c.id === id) as { status: string; detail: string; query: string; observed: unknown } | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-verify-migrations-'));
  const repoDir = resolve(PROJECT_ROOT, 'database/migrations');
  repo = {};
  for (const file of (await readdir(repoDir)).sort()) repo[basename(file, '.js')] = await readFile(join(repoDir, file), 'utf8');
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
      verify: { smokeEtl: true, watchMinutes: 0.05, degradeFactor: 2 }, etl: { pollIntervalMs: 50 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)},
      verify: { smokeEtl: true, watchMinutes: 0, indexes: ['public.hero_snapshots_region_idx'] } } } };`;
  t = await startTestApp({ label: 'verify', migrationConfigSource: config, env: { ETL_WORKER: 'on' } });
});

after(async () => {
  await t.app.services.etlWorkers.stop();
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await t.app.services.etlWorkers.stop();
  await t.settle();
  await t.control.query(`UPDATE runs SET status = 'cancelled' WHERE status NOT IN ('cancelled', 'succeeded', 'failed', 'rejected', 'rolled_back', 'restored', 'preflight_failed', 'verification_failed', 'degraded')`);
  for (const db of [t.targets.staging, t.targets.production]) {
    await db.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC; DROP EXTENSION IF EXISTS pgcrypto;');
  }
});

describe('post-apply verification', () => {
  test('the StarForge schema: every check passes, the smoke ETL runs and cleans up, the watch is healthy', async () => {
    await writeMigrations(dir, repo);
    const id = await applyRun('staging');
    assert.equal(await runStatus(id), 'succeeded');
    const r = await report(id);
    for (const c of r.verification) assert.equal(c.status, 'pass', `${c.id}: ${c.detail}`);
    const indexes = checkOf(r, 'expected-indexes')!;
    assert.ok((indexes.observed as { expected: string[] }).expected.includes('public.hero_snapshots_raw_gin'), 'the GIN index is expected because the run creates it');
    assert.ok((checkOf(r, 'expected-tables')!.observed as { expected: string[] }).expected.includes('public.user_troops'));
    assert.match(checkOf(r, 'invalid-indexes')!.query, /indisvalid/);
    assert.equal(r.smoke.ok, true, r.smoke.detail);
    const leftovers = await t.targets.staging.query(`SELECT (SELECT count(*) FROM hero_snapshots)::int AS snapshots, (SELECT count(*) FROM user_profile_summary)::int AS summaries, (SELECT count(*) FROM user_troops)::int AS troops`);
    assert.deepEqual(leftovers.rows[0], { snapshots: 0, summaries: 0, troops: 0 }, 'the smoke rows are gone');
    assert.equal(r.watch.degraded, false);
    const md = await api('get', `/v1/runs/${id}/report?format=md`, 'vic');
    assert.match(md.text, /## Verification/);
    assert.match(md.text, /Smoke ETL: \*\*PASS\*\*/);
    assert.match(md.text, /## Post-apply watch/);
    assert.match(md.text, /to_regclass/, 'the queries are in the report, as the runbook asks');
  });

  test('a missing expected index fails verification; workers stay paused and the report says what to do', async () => {
    await writeMigrations(dir, repo);
    // Up to etl_control, so there are workers to pause when the run starts.
    await applyMigrations(t.targets.production.url, dir, 7);
    const id = await applyRun('production');
    assert.equal(await runStatus(id), 'verification_failed');
    const r = await report(id);
    const c = checkOf(r, 'expected-indexes')!;
    assert.equal(c.status, 'fail');
    assert.match(c.detail, /public\.hero_snapshots_region_idx/);
    assert.equal((await t.targets.production.query('SELECT paused FROM etl_control')).rows[0].paused, true, 'workers stay paused');
    assert.ok(r.notes.some((n: string) => /rollback|restore/.test(n)), 'the runbook decision flow is in the report');
  });

  test('an INVALID index (a failed CONCURRENTLY build) fails verification', async () => {
    await writeMigrations(dir, repo);
    await applyMigrations(t.targets.staging.url, dir, 2);
    await t.targets.staging.query(`INSERT INTO hero_snapshots (user_id, raw) VALUES ('dup', '{}'), ('dup', '{}')`);
    await t.targets.staging.query('CREATE UNIQUE INDEX CONCURRENTLY hero_snapshots_user_once ON hero_snapshots (user_id)').catch(() => undefined);
    await t.targets.staging.query('DELETE FROM hero_snapshots');
    const id = await applyRun('staging');
    assert.equal(await runStatus(id), 'verification_failed');
    const c = checkOf(await report(id), 'invalid-indexes')!;
    assert.equal(c.status, 'fail');
    assert.match(c.detail, /hero_snapshots_user_once/);
  });

  test('a migration that breaks the upsert fails preflight: the smoke ETL runs on the rehearsal copy', async () => {
    await writeMigrations(dir, {
      ...repo,
      '1700000000800_cap-troops': migrationSource('ALTER TABLE user_troops ADD CONSTRAINT troops_minimum CHECK (count > 1000) NOT VALID', 'ALTER TABLE user_troops DROP CONSTRAINT troops_minimum'),
    });
    const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'breaks the ETL' });
    await t.settle();
    const run = (await api('get', `/v1/runs/${created.body.id}`, 'vic')).body;
    assert.equal(run.status, 'preflight_failed');
    assert.equal(run.error.code, 'rehearsal-smoke-etl-failed');
    assert.match(run.error.message, /troops_minimum/);
    assert.equal((await t.targets.staging.query(`SELECT to_regclass('public.hero_snapshots') AS t`)).rows[0].t, null, 'the target was not touched');
  });

  test('a break that only shows on real data passes the rehearsal and fails the post-apply smoke ETL', async () => {
    // A guard that refuses troop writes once the table holds real snapshots: the
    // schema-only rehearsal copy has none, the target has some.
    const guard = migrationSource(
      `CREATE FUNCTION troops_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF (SELECT count(*) FROM hero_snapshots) > 1 THEN RAISE EXCEPTION 'troops_guard refused the write'; END IF; RETURN NEW; END $$; CREATE TRIGGER troops_guard BEFORE INSERT ON user_troops FOR EACH ROW EXECUTE FUNCTION troops_guard()`,
      'DROP TRIGGER troops_guard ON user_troops; DROP FUNCTION troops_guard()',
    );
    await writeMigrations(dir, { ...repo, '1700000000800_troops-guard': guard });
    await applyMigrations(t.targets.staging.url, dir, 7);
    await t.targets.staging.query(`INSERT INTO hero_snapshots (user_id, raw, processed_at) VALUES ('old-1', '{}', now()), ('old-2', '{}', now())`);
    const id = await applyRun('staging');
    assert.equal(await runStatus(id), 'verification_failed');
    const r = await report(id);
    assert.equal(r.smoke.ok, false);
    assert.match(r.smoke.detail, /troops_guard refused the write/);
    assert.equal(checkOf(r, 'smoke-etl')!.status, 'fail');
    const left = await t.targets.staging.query(`SELECT count(*)::int AS n FROM hero_snapshots WHERE user_id LIKE 'starforge-smoke-%'`);
    assert.equal(left.rows[0].n, 0, 'smoke rows removed even after a failure');
  });

  test('new etl_errors since the apply started fail verification', async () => {
    await writeMigrations(dir, {
      ...repo,
      '1700000000800_import-legacy': migrationSource(`INSERT INTO etl_errors (error_type, message) VALUES ('legacy_import', 'row 7 skipped')`, `DELETE FROM etl_errors WHERE error_type = 'legacy_import'`),
    });
    const id = await applyRun('staging');
    assert.equal(await runStatus(id), 'verification_failed');
    const c = checkOf(await report(id), 'new-etl-errors')!;
    assert.equal(c.status, 'fail');
    assert.match(c.detail, /legacy_import: row 7 skipped/);
  });
});

describe('post-apply watch and the in-process worker', () => {
  test('invalid client uploads after the apply are counted apart and do not degrade the run; the worker counts what it processed', async () => {
    await writeMigrations(dir, repo);
    t.app.services.etlWorkers.start();
    const id = await applyRun('staging', async () => {
      // Workers are resumed and the watch runs: feed the worker snapshots that are invalid (schemaVersion 2).
      for (let i = 0; i < 6; i++) {
        await t.targets.staging.query(`INSERT INTO hero_snapshots (user_id, raw) VALUES ($1, '{"schemaVersion": 2}')`, [`bad-${i}`]);
      }
      await t.targets.staging.query(`INSERT INTO hero_snapshots (user_id, raw) VALUES ('good', $1)`, [JSON.stringify({
        schemaVersion: 1, player: { id: 'good', name: 'Good', level: 1 }, heroes: [], troops: [],
      })]);
      // Wait until the worker rejected all six, inside the watch window.
      for (let i = 0; (await t.targets.staging.query(`SELECT count(*)::int AS n FROM etl_errors WHERE error_type = 'invalid_snapshot'`)).rows[0].n < 6; i++) {
        assert.ok(i < 200, 'the worker never rejected the invalid snapshots');
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    assert.equal(await runStatus(id), 'succeeded');
    const r = await report(id);
    assert.equal(r.watch.degraded, false, r.watch.detail);
    assert.equal(r.watch.during.invalid, 6, JSON.stringify(r.watch.during));
    assert.equal(r.watch.during.failed, 0, 'invalid uploads are not processing errors');
    assert.match(r.watch.detail, /6 invalid client upload/);
    const metrics = t.app.services.metrics;
    assert.equal((await metrics.etlFailed.get()).values.find((v) => v.labels.environment === 'staging')?.value, 6);
    assert.ok(((await metrics.etlProcessed.get()).values.find((v) => v.labels.environment === 'staging')?.value ?? 0) >= 1);
  });

  test('processing errors beyond the minimum and the ratio degrade the run, and its report says DEGRADED', async () => {
    await writeMigrations(dir, repo);
    const id = await applyRun('staging', async () => {
      await t.targets.staging.query(`INSERT INTO etl_errors (error_type, message) SELECT 'processing_error', 'deadlock detected ' || g FROM generate_series(1, 10) g`);
    });
    assert.equal(await runStatus(id), 'degraded');
    const r = await report(id);
    assert.equal(r.outcome, 'degraded');
    assert.match(r.watch.detail, /10 processing errors, at least 10 needed/);
    const md = (await api('get', `/v1/runs/${id}/report?format=md`, 'vic')).text;
    assert.match(md, /Status: \*\*degraded\*\*/);
    assert.match(md, /Outcome: \*\*DEGRADED\*\*/);
    assert.doesNotMatch(md, /SUCCEEDED/);
  });

  test('fewer processing errors than verify.degradeMinFailures never degrade, whatever the ratio', async () => {
    await writeMigrations(dir, repo);
    const id = await applyRun('staging', async () => {
      await t.targets.staging.query(`INSERT INTO etl_errors (error_type, message) SELECT 'processing_error', 'deadlock detected ' || g FROM generate_series(1, 9) g`);
    });
    assert.equal(await runStatus(id), 'succeeded');
    const r = await report(id);
    assert.equal(r.watch.during.failed, 9);
    assert.equal(r.watch.degraded, false);
  });
});
