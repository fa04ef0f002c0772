// The post-apply watch as a phase an operator acts on, against real
// PostgreSQL: a 30-minute watch keeps the run in monitoring while the report
// is served, the watch is ended early (healthy, degraded on processing errors,
// not on invalid uploads) and a rollback is approved during it.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { PROJECT_ROOT } from '../../database/paths.js';
import { apiClient } from '../support/api-client.js';
import type { TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { applyMigrations, migrationSource, writeMigrations } from '../support/migrations.js';
import { cancelUnfinishedRuns, emptyPublicSchema } from '../support/reset.js';

let app: ApplyApp;
let t: TestApp;
let dir: string;
let repo: Record<string, string>;

const { api, runOf, createAndApprove } = apiClient(() => t);
const eventsOf = async (id: string) => (await t.control.query('SELECT type FROM run_events WHERE run_id = $1 ORDER BY id', [id])).rows.map((r) => r.type as string);

/** A staging run applied and sitting in its 30-minute watch. */
async function monitoringRun(): Promise<string> {
  await writeMigrations(dir, repo);
  await applyMigrations(t.targets.staging.url, dir, Object.keys(repo).length);
  await writeMigrations(dir, { ...repo, '1800000000000_add-note': migrationSource('ALTER TABLE hero_snapshots ADD COLUMN note text', 'ALTER TABLE hero_snapshots DROP COLUMN note') });
  const { id, approved } = await createAndApprove('watch actions');
  assert.equal(approved.status, 201);
  const applied = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' });
  assert.equal(applied.status, 202, applied.text);
  for (let i = 0; ; i++) {
    const run = await runOf(id);
    if (run.status === 'monitoring') break;
    assert.ok(i < 1200 && ['applying', 'verifying', 'approved', 'scheduled'].includes(run.status), `never reached monitoring: ${run.status} ${JSON.stringify(run.error)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return id;
}

before(async () => {
  const repoDir = resolve(PROJECT_ROOT, 'database/migrations');
  repo = {};
  for (const file of (await readdir(repoDir)).sort()) repo[basename(file, '.js')] = await readFile(join(repoDir, file), 'utf8');
  app = await startApplyApp({ label: 'watch-actions', staging: 'verify: { smokeEtl: false, watchMinutes: 30 }', env: { APPLY_LEASE_SECONDS: '3' } });
  ({ t, dir } = app);
});

after(() => app.close());

afterEach(async () => {
  // A run left monitoring would hold its watch (and the test app's shutdown) for 30 minutes.
  for (const { id } of (await t.control.query(`SELECT id FROM runs WHERE status = 'monitoring'`)).rows) {
    await api('post', `/v1/runs/${id}/watch/end`, 'olga', { reason: 'test cleanup' });
  }
  await cancelUnfinishedRuns(t);
  await emptyPublicSchema(t.targets.staging, 'DROP EXTENSION IF EXISTS pgcrypto;');
});

describe('the watch as a phase', () => {
  test('during monitoring the run carries its watch and the report is served, its watch section pending', async () => {
    const id = await monitoringRun();
    const run = await runOf(id);
    assert.ok(run.watch, JSON.stringify(run));
    assert.equal(run.watch.verdict, null);
    assert.equal(run.watch.endedEarly, false);
    const minutes = (Date.parse(run.watch.endsAt) - Date.parse(run.watch.startedAt)) / 60_000;
    assert.equal(Math.round(minutes), 30);
    const listed = (await api('get', '/v1/runs?environment=staging', 'vic')).body.items.find((r: { id: string }) => r.id === id);
    assert.equal(listed.watch.endsAt, run.watch.endsAt, 'the list carries the watch too');
    const report = await api('get', `/v1/runs/${id}/report`, 'vic');
    assert.equal(report.status, 200, report.text);
    assert.equal(report.body.apply.report.watch, null);
    assert.ok(report.body.apply.report.verification.length > 0, 'the verification section is there');
    assert.ok(report.body.apply.report.notes.some((n: string) => n.includes(run.watch.endsAt)), 'the report says when the watch ends');
    const md = await api('get', `/v1/runs/${id}/report?format=md`, 'vic');
    assert.equal(md.status, 200);
    assert.match(md.text, /## Verification/);
  });

  test('an operator ends the watch early: succeeded on what was seen, audited, once', async () => {
    const id = await monitoringRun();
    assert.equal((await api('post', `/v1/runs/${id}/watch/end`, 'bob', { reason: 'x' })).status, 403, 'operator only');
    assert.equal((await api('post', `/v1/runs/${id}/watch/end`, 'olga', {})).status, 400, 'a reason is required');
    const ended = await api('post', `/v1/runs/${id}/watch/end`, 'olga', { reason: 'release train waits' });
    assert.equal(ended.status, 200, ended.text);
    assert.equal(ended.body.status, 'succeeded');
    assert.equal(ended.body.watch.verdict, 'healthy');
    assert.equal(ended.body.watch.endedEarly, true);
    const again = await api('post', `/v1/runs/${id}/watch/end`, 'olga', { reason: 'again' });
    assert.equal(again.status, 409);
    await t.settle(); // the watcher lets go of the run (its lease was revoked)
    const events = await eventsOf(id);
    assert.ok(events.includes('watch.ended_early'), events.join());
    assert.ok(!events.includes('watch.handed_off'), 'the watcher stopped without handing the watch off');
    const { rows: [audit] } = await t.control.query(`SELECT actor, details FROM run_events WHERE run_id = $1 AND type = 'watch.ended_early'`, [id]);
    assert.equal(audit.actor, 'olga');
    assert.equal(audit.details.reason, 'release train waits');
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.equal(report.watch.cutShort, true);
    assert.match(report.watch.detail, /ended early/);
    assert.equal((await runOf(id)).status, 'succeeded', 'the watcher did not overwrite the verdict');
  });

  test('ended early with processing errors: degraded; invalid uploads alone are not', async () => {
    const healthy = await monitoringRun();
    await t.targets.staging.query(`INSERT INTO etl_errors (error_type, message) SELECT 'invalid_snapshot', 'bad upload ' || g FROM generate_series(1, 25) g`);
    const ok = await api('post', `/v1/runs/${healthy}/watch/end`, 'olga', { reason: 'looks fine' });
    assert.equal(ok.body.status, 'succeeded', JSON.stringify(ok.body.error));
    const r = (await api('get', `/v1/runs/${healthy}/report`, 'vic')).body.apply.report;
    assert.equal(r.watch.during.invalid, 25);
    assert.equal(r.watch.during.failed, 0);
    await t.settle();
    await emptyPublicSchema(t.targets.staging, 'DROP EXTENSION IF EXISTS pgcrypto;');

    const bad = await monitoringRun();
    await t.targets.staging.query(`INSERT INTO etl_errors (error_type, message) SELECT 'processing_error', 'deadlock ' || g FROM generate_series(1, 12) g`);
    const degraded = await api('post', `/v1/runs/${bad}/watch/end`, 'olga', { reason: 'errors rising' });
    assert.equal(degraded.body.status, 'degraded');
    assert.equal(degraded.body.watch.verdict, 'degraded');
    const md = (await api('get', `/v1/runs/${bad}/report?format=md`, 'vic')).text;
    assert.match(md, /Outcome: \*\*DEGRADED\*\*/);
  });

  test('a rollback asked for and approved during monitoring ends the watch, then rolls back', async () => {
    const id = await monitoringRun();
    const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'undo during the watch' });
    assert.equal(asked.status, 202, asked.text);
    assert.equal((await runOf(id)).status, 'monitoring', 'asking does not end the watch');
    const approved = await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: asked.body.planDigest });
    assert.equal(approved.status, 201, approved.text);
    await t.settle();
    const run = await runOf(id);
    assert.equal(run.status, 'rolled_back', JSON.stringify(run.error));
    assert.equal(run.watch.endedEarly, true);
    const events = await eventsOf(id);
    const ended = events.indexOf('watch.ended_early');
    assert.ok(ended >= 0 && ended < events.indexOf('run.rolling_back'), events.join());
    const cols = await t.targets.staging.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'hero_snapshots' AND column_name = 'note'`);
    assert.equal(cols.rowCount, 0, 'the down migration ran');
  });

  test('a restore approved during monitoring ends the watch, then restores', async () => {
    const id = await monitoringRun();
    const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'restore', confirm: 'staging', reason: 'restore during the watch' });
    assert.equal(asked.status, 202, asked.text);
    const approved = await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: asked.body.planDigest });
    assert.equal(approved.status, 201, approved.text);
    await t.settle();
    const run = await runOf(id);
    assert.equal(run.status, 'restored', JSON.stringify(run.error));
    const events = await eventsOf(id);
    assert.ok(events.indexOf('watch.ended_early') >= 0 && events.indexOf('watch.ended_early') < events.indexOf('run.restoring'), events.join());
    assert.ok(!events.includes('watch.handed_off'), events.join());
  });
});
