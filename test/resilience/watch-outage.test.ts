// The staging target sits behind a TCP proxy the test cuts during the
// post-apply watch: an outage the watch outlives is retried and reported, one
// that outlasts the watch and its retry time ends the run degraded saying the
// ETL could not be observed (never a run left monitoring). And a run
// reconciled while its target is unreachable reports what the ledger says
// landed, never "none landed".
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, FIXTURES, WATCHED_BASE } from '../support/migrations.js';
import { api, freeEnvironments, type ApiRun } from '../runs/helpers.js';
import { waitFor } from '../scheduler/server-process.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

const PENDING = { '2000_add-note': FIXTURES.addNote, '3000_add-score': FIXTURES.addScore };
const WATCH_MINUTES = 0.1; // 6 s
const RETRY_MINUTES = 0.1; // 6 s

let t: TestApp;
let target: TestDatabase;
let proxy: FaultProxy;
let dir: string;

before(async () => {
  target = await createTestDatabase('watchout_tgt');
  proxy = await startFaultProxy(target.url);
  dir = await mkdtemp(join(tmpdir(), 'sf-watchout-'));
  const migrations = join(dir, 'migrations');
  await mkdir(migrations);
  for (const [name, source] of Object.entries(WATCHED_BASE)) await writeFile(join(migrations, `${name}.js`), source);
  await applyMigrations(target.url, migrations, Object.keys(WATCHED_BASE).length);
  for (const [name, source] of Object.entries(PENDING)) await writeFile(join(migrations, `${name}.js`), source);
  const staging = {
    databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: migrations, approvals: { required: ['any'] },
    backup: { method: 'pg_dump', dir: join(dir, 'backups') }, verify: { smokeEtl: false, watchMinutes: WATCH_MINUTES, watchRetryMinutes: RETRY_MINUTES },
    workers: { pause: { method: 'sql' }, pauseTimeoutMs: 3000 },
  };
  t = await startTestApp({
    label: 'watchout',
    migrationConfigSource: `export default ${JSON.stringify({ environments: { staging, production: { ...staging, databaseUrlEnv: 'PRODUCTION_DATABASE_URL' } } })};\n`,
    env: { STAGING_DATABASE_URL: proxy.route(target.url), DATA_DIR: join(dir, 'data') },
  });
});

beforeEach(async () => {
  await proxy.restore();
  await freeEnvironments(t);
  await t.control.query('DELETE FROM migration_ledger');
  await target.query(`DELETE FROM pgmigrations WHERE name IN ('2000_add-note', '3000_add-score'); ALTER TABLE accounts DROP COLUMN IF EXISTS note, DROP COLUMN IF EXISTS score; UPDATE etl_control SET paused = false`);
});

after(async () => {
  await t?.close();
  await proxy?.close();
  await target?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function run(id: string): Promise<ApiRun> {
  return (await api(t).get(id)).body as ApiRun;
}

/** An approved run, applied by olga; resolves once it is monitoring, with the watch's end. */
async function applyToWatch(description: string): Promise<{ id: string; endsAt: string }> {
  const created = await api(t).create('alice', { environment: 'staging', description });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const id = created.body.id as string;
  assert.equal((await api(t).decide(id, 'bob', 'engineering')).status, 201);
  const applied = await t.http().post(`/v1/runs/${id}/apply`).set('authorization', bearer('olga')).send({ confirm: 'staging' });
  assert.equal(applied.status, 202, applied.text);
  const endsAt = await waitFor('monitoring', async () => {
    const { rows } = await t.control.query(`SELECT status, apply_state #>> '{watch,window,endsAt}' AS ends_at FROM runs WHERE id = $1`, [id]);
    return rows[0].status === 'monitoring' ? (rows[0].ends_at as string) : undefined;
  }, 60_000, 50);
  return { id, endsAt };
}

async function applyReport(id: string) {
  const res = await t.http().get(`/v1/runs/${id}/report`).set('authorization', bearer('vic'));
  assert.equal(res.status, 200, res.text);
  return res.body.apply.report;
}

test('the target goes away during the watch and comes back: the watch is retried and ends on time, succeeded, with the outage reported', { timeout: 90_000 }, async () => {
  const { id, endsAt } = await applyToWatch('outage during the watch');
  await proxy.cut();
  await new Promise((resolve) => setTimeout(resolve, 2500));
  await proxy.restore();
  await t.settle();
  const ended = await run(id);
  assert.equal(ended.status, 'succeeded', JSON.stringify(ended.error));
  const report = await applyReport(id);
  assert.equal(report.watch.observed, true);
  assert.ok(report.watch.outages.length >= 1, JSON.stringify(report.watch));
  assert.ok(report.watch.outages.every((o: { to: string | null }) => o.to !== null), 'every outage ended');
  assert.match(report.watch.detail, /unreachable 1 time|unreachable \d+ time/);
  assert.ok(Date.parse(report.finishedAt) >= Date.parse(endsAt), 'the watch lasted its full window');
});

test('the target stays away past the watch: the verdict is retried, then the run ends degraded saying the ETL could not be observed', { timeout: 90_000 }, async () => {
  const { id, endsAt } = await applyToWatch('target gone for good');
  await proxy.cut();
  await t.settle();
  const ended = await run(id);
  assert.equal(ended.status, 'degraded', `run is ${ended.status}: ${JSON.stringify(ended.error)}`);
  assert.match(ended.error!.message, /could not be observed/);
  const report = await applyReport(id);
  assert.equal(report.watch.observed, false);
  assert.equal(report.watch.during, null);
  assert.ok(report.watch.outages.length >= 1);
  assert.equal(report.watch.outages.at(-1).to, null, 'the outage had not ended when the watch gave up');
  const finished = Date.parse(report.finishedAt);
  // The retry is bounded: the run ends after the retry time, and not long after it.
  assert.ok(finished >= Date.parse(endsAt) + RETRY_MINUTES * 60_000, `ended ${report.finishedAt}, before the retry time after ${endsAt}`);
  assert.ok(finished <= Date.parse(endsAt) + RETRY_MINUTES * 60_000 + 30_000, `ended ${report.finishedAt}, long after the retry time after ${endsAt}`);
  assert.equal((await t.control.query('SELECT lease_owner FROM runs WHERE id = $1', [id])).rows[0].lease_owner, null);
});

test('a run reconciled while its target is unreachable: landed is what the ledger says, never "none landed"; close waits for the target', { timeout: 90_000 }, async () => {
  const created = await api(t).create('alice', { environment: 'staging', description: 'dies in verification' });
  await t.settle();
  const id = created.body.id as string;
  await api(t).decide(id, 'bob', 'engineering');
  // What a process dying in verification leaves: both migrations applied and ledgered, the run verifying, its lease lapsed.
  await applyMigrations(target.url, join(dir, 'migrations'), 2);
  const { rows: [r] } = await t.control.query('SELECT migrations FROM runs WHERE id = $1', [id]);
  for (const m of r.migrations) await t.control.query('INSERT INTO migration_ledger (environment, name, sha256, run_id) VALUES ($1, $2, $3, $4)', ['staging', m.name, m.sha256, id]);
  await t.control.query(`UPDATE runs SET status = 'verifying', apply_state = '{"phase": "verify", "applied": ["2000_add-note", "3000_add-score"]}', lease_owner = 'ghost:1:dead', lease_expires_at = now() - interval '1 minute' WHERE id = $1`, [id]);
  await proxy.cut();
  assert.deepEqual(await t.app.services.apply.reconcile({ expiredLeasesOnly: true }), [id]);
  const ended = await run(id);
  assert.equal(ended.status, 'interrupted');
  assert.match(ended.error!.message, /unknown \(target unreachable; the ledger lists 2000_add-note, 3000_add-score\)/);
  const rec = (await applyReport(id)).reconciliation;
  assert.equal(rec.target.reachable, false);
  assert.equal(rec.landedKnown, false);
  assert.deepEqual(rec.landed, ['2000_add-note', '3000_add-score']);
  assert.equal(rec.closable, false);
  assert.doesNotMatch(rec.advice.join(' '), /None of the run's migrations landed/);
  assert.deepEqual(rec.migrations.map((m: { inTarget: unknown }) => m.inTarget), [null, null]);

  const closing = await t.http().post(`/v1/runs/${id}/close`).set('authorization', bearer('olga')).send({ reason: 'try' });
  assert.equal(closing.status, 503, closing.text);
  await proxy.restore();
  const refused = await t.http().post(`/v1/runs/${id}/close`).set('authorization', bearer('olga')).send({ reason: 'try' });
  assert.equal(refused.status, 409, refused.text);
  assert.match(refused.body.detail, /on the target: 2000_add-note, 3000_add-score; in the ledger: 2000_add-note, 3000_add-score/);
  assert.equal((await run(id)).status, 'interrupted');

  // Everything landed: a re-apply runs no migration, only verification and the watch.
  const reapplied = await t.http().post(`/v1/runs/${id}/reapply`).set('authorization', bearer('olga')).send({ confirm: 'staging', reason: 're-verify' });
  assert.equal(reapplied.status, 202, reapplied.text);
  await t.settle();
  const done = await run(id);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const report = await applyReport(id);
  assert.deepEqual(report.landedBefore, ['2000_add-note', '3000_add-score']);
  assert.deepEqual(report.migrations, []);
  assert.ok(report.verification.every((c: { status: string }) => c.status !== 'fail'));
});
