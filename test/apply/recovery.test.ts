// Recovery transitions and reconciliations on one app, against real
// PostgreSQL, with the dead process's leftovers written as such a process
// leaves them (test/resilience/phase-crash.test.ts kills real ones): the
// restore resuming the ETL it and the apply paused, re-apply refusals, a
// restore whose process died after pg_restore committed, a silent lock holder.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { restoreBackup } from '../../services/apply/backup.js';
import { canTransition } from '../../services/runs/state-machine.js';
import { apiClient } from '../support/api-client.js';
import type { TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, migrationSource as migration, writeMigrations } from '../support/migrations.js';
import { cancelUnfinishedRuns, emptyPublicSchema } from '../support/reset.js';

let app: ApplyApp;
let t: TestApp;
let dir: string;

const PENDING = { '2000_add-note': FIXTURES.addNote, '3000_add-score': FIXTURES.addScore };

const { api, runOf, createAndApprove } = apiClient(() => t);
const etl = async () => (await t.targets.staging.query('SELECT paused, reason, changed_by FROM etl_control')).rows[0];

async function approvedRun(files: Record<string, string> = PENDING): Promise<string> {
  await writeMigrations(dir, FIXTURE_BASE);
  await applyMigrations(t.targets.staging.url, dir, 2);
  await writeMigrations(dir, { ...FIXTURE_BASE, ...files });
  const { id, approved } = await createAndApprove('recovery');
  assert.equal(approved.status, 201, approved.text);
  return id;
}

async function succeededRun(): Promise<string> {
  const id = await approvedRun();
  assert.equal((await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' })).status, 202);
  await t.settle();
  const run = await runOf(id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  return id;
}

async function restore(id: string): Promise<void> {
  const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'restore', confirm: 'staging', reason: 'undo' });
  assert.equal(asked.status, 202, asked.text);
  assert.equal((await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: asked.body.planDigest })).status, 201);
  await t.settle();
}

/** A run a dead process left interrupted with `landed` of its migrations on the target (ledgered). */
async function interruptedRun(landed: number): Promise<string> {
  const id = await approvedRun();
  if (landed) await applyMigrations(t.targets.staging.url, dir, landed);
  const { rows: [r] } = await t.control.query('SELECT migrations FROM runs WHERE id = $1', [id]);
  for (const m of r.migrations.slice(0, landed)) await t.control.query('INSERT INTO migration_ledger (environment, name, sha256, run_id) VALUES ($1, $2, $3, $4)', ['staging', m.name, m.sha256, id]);
  await t.control.query(`UPDATE runs SET status = 'interrupted', apply_state = jsonb_build_object('applied', $2::jsonb) WHERE id = $1`, [id, JSON.stringify(r.migrations.slice(0, landed).map((m: { name: string }) => m.name))]);
  return id;
}

before(async () => {
  app = await startApplyApp({ label: 'recovery', staging: 'verify: { smokeEtl: false, watchMinutes: 0 }' });
  ({ t, dir } = app);
});

after(() => app.close());

afterEach(async () => {
  await cancelUnfinishedRuns(t);
  await t.control.query('DELETE FROM migration_ledger');
  await emptyPublicSchema(t.targets.staging);
});

test('the state machine: an interrupted run can be closed (-> failed) or re-applied (-> applying)', () => {
  assert.ok(canTransition('interrupted', 'failed'));
  assert.ok(canTransition('interrupted', 'applying'));
  assert.ok(canTransition('restoring', 'failed') && canTransition('rolling_back', 'failed'));
  assert.equal(canTransition('monitoring', 'applying'), false);
});

describe('restore and the ETL', () => {
  test('the backup carries the apply\'s pause: the restore lifts it and says so; the ETL runs as before the apply', async () => {
    const id = await succeededRun();
    assert.equal((await etl()).paused, false);
    await restore(id);
    const run = await runOf(id);
    assert.equal(run.status, 'restored', JSON.stringify(run.error));
    assert.equal((await etl()).paused, false, 'the ETL runs after the restore');
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback;
    assert.equal(report.etl.backupCarried.paused, true, 'the backup was taken after the apply paused the ETL');
    assert.equal(report.etl.backupCarried.changedBy, 'olga');
    assert.match(report.etl.action, /the backup carried the apply's pause \(by olga: migration run /);
    assert.ok(report.notes.some((n: string) => /^ETL: /.test(n)));
  });

  test('an operator pause made before the restore stays, with its reason', async () => {
    const id = await succeededRun();
    await t.targets.staging.query(`UPDATE etl_control SET paused = true, reason = 'incident 42', changed_by = 'oscar'`);
    await restore(id);
    assert.equal((await runOf(id)).status, 'restored');
    const row = await etl();
    assert.deepEqual({ paused: row.paused, reason: row.reason, changed_by: row.changed_by }, { paused: true, reason: 'incident 42', changed_by: 'oscar' });
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback;
    assert.match(report.etl.action, /paused by oscar before the restore \(incident 42\)/);
  });
});

describe('close and re-apply', () => {
  test('close: only an interrupted run, only an operator; refused naming a migration the ledger lists', async () => {
    const id = await succeededRun();
    const notInterrupted = await api('post', `/v1/runs/${id}/close`, 'olga', { reason: 'x' });
    assert.equal(notInterrupted.status, 409);
    assert.match(notInterrupted.body.detail, /only an interrupted run can be closed/);
    await t.control.query(`UPDATE runs SET status = 'interrupted' WHERE id = $1`, [id]);
    // The target's table says nothing landed, but the ledger does: refused all the same.
    await t.targets.staging.query(`DELETE FROM pgmigrations WHERE name = '3000_add-score'`);
    const refused = await api('post', `/v1/runs/${id}/close`, 'olga', { reason: 'x' });
    assert.equal(refused.status, 409);
    assert.deepEqual(refused.body.landed, { target: ['2000_add-note'], ledger: ['2000_add-note', '3000_add-score'] });
    assert.equal((await runOf(id)).status, 'interrupted');
    assert.equal((await api('post', `/v1/runs/${id}/close`, 'carol', { reason: 'x' })).status, 403);
  });

  test('close of a run nothing of which landed: failed, audited, the run\'s own ETL pause lifted, the environment free', async () => {
    const id = await interruptedRun(0);
    // The dead apply set the flag but died before recording its pause as done.
    const { rows: [r] } = await t.control.query('SELECT ticket FROM runs WHERE id = $1', [id]);
    await t.control.query(`UPDATE runs SET apply_state = apply_state || jsonb_build_object('phase', 'pause', 'pauses', jsonb_build_array(jsonb_build_object('pausedBy', 'olga', 'pauseReason', $2::text))) WHERE id = $1`, [id, `migration run ${id}${r.ticket ? ` (${r.ticket})` : ''}`]);
    await t.targets.staging.query(`UPDATE etl_control SET paused = true, reason = $1, changed_by = 'olga'`, [`migration run ${id}`]);
    const closed = await api('post', `/v1/runs/${id}/close`, 'olga', { reason: 'died while pausing' });
    assert.equal(closed.status, 200, closed.text);
    assert.equal(closed.body.status, 'failed');
    assert.equal((await etl()).paused, false);
    const events = (await api('get', `/v1/runs/${id}/events`, 'vic')).body;
    const close = events.find((e: { type: string }) => e.type === 'run.closed');
    assert.equal(close.from, 'interrupted');
    assert.equal(close.to, 'failed');
    assert.equal(close.actor, 'olga');
    assert.equal(close.details.reason, 'died while pausing');
    assert.deepEqual(close.details.checked, { target: [], ledger: [] });
    assert.match(close.details.workers, /lifted/);
    const next = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'next' });
    assert.equal(next.status, 201, next.text);
  });

  test('re-apply is refused on drift, on an INVALID index the attempt left, and for a run that is not interrupted', async () => {
    const id = await interruptedRun(1);
    await writeFile(join(dir, '3000_add-score.js'), migration('ALTER TABLE accounts ADD COLUMN score bigint', 'ALTER TABLE accounts DROP COLUMN score'));
    const drift = await api('post', `/v1/runs/${id}/reapply`, 'olga', { confirm: 'staging', reason: 'retry' });
    assert.equal(drift.status, 409);
    assert.equal(drift.body.code, 'drift');
    assert.match(drift.body.detail, /content of 3000_add-score changed since approval/);
    await writeFile(join(dir, '3000_add-score.js'), FIXTURES.addScore);

    await t.targets.staging.query(`INSERT INTO accounts VALUES (51, 'u1@x')`);
    await assert.rejects(t.targets.staging.query('CREATE UNIQUE INDEX CONCURRENTLY accounts_email_uq ON accounts (email)'));
    const invalid = await api('post', `/v1/runs/${id}/reapply`, 'olga', { confirm: 'staging', reason: 'retry' });
    assert.equal(invalid.status, 409);
    assert.match(invalid.body.detail, /INVALID index\(es\) accounts_email_uq on accounts/);
    await t.targets.staging.query('DROP INDEX accounts_email_uq');
    assert.equal((await runOf(id)).status, 'interrupted', 'refusals change nothing');

    const ok = await api('post', `/v1/runs/${id}/reapply`, 'olga', { confirm: 'staging', reason: 'retry' });
    assert.equal(ok.status, 202, ok.text);
    await t.settle();
    assert.equal((await runOf(id)).status, 'succeeded');
    const again = await api('post', `/v1/runs/${id}/reapply`, 'olga', { confirm: 'staging', reason: 'again' });
    assert.equal(again.status, 409);
    const events = (await api('get', `/v1/runs/${id}/events`, 'vic')).body.map((e: { type: string }) => e.type);
    assert.equal(events.filter((e: string) => e === 'apply.refused').length, 1);
  });
});

describe('reconciliation', () => {
  test('a restore whose process died after pg_restore committed: the changed table ids prove it, the restore is finished', async () => {
    const id = await succeededRun();
    const { rows: [b] } = await t.control.query('SELECT * FROM backups WHERE run_id = $1', [id]);
    const oids = await t.targets.staging.query(`SELECT n AS name, to_regclass(n)::oid::bigint::text AS oid FROM unnest(ARRAY['public.accounts', 'public.etl_control', 'public.pgmigrations']) n`);
    const { rows: [request] } = await t.control.query(`INSERT INTO rollback_requests (run_id, mode, status, requested_by, reason, decided_by) VALUES ($1, 'restore', 'running', 'olga', 'undo', 'carol') RETURNING id`, [id]);
    const state = { requestId: request.id, mode: 'restore', phase: 'restore', backupId: b.id, restoreOids: Object.fromEntries(oids.rows.map((r) => [r.name, r.oid])) };
    await t.control.query(`UPDATE runs SET status = 'restoring', apply_state = apply_state || jsonb_build_object('rollback', $2::jsonb), lease_owner = 'ghost:1:dead', lease_expires_at = now() - interval '1 minute' WHERE id = $1`, [id, JSON.stringify(state)]);
    // pg_restore committed, then the process died.
    await restoreBackup({ id: b.id, method: 'pg_dump', location: b.location, sizeBytes: Number(b.size_bytes), sha256: b.sha256, createdAt: '', verifiedAt: '' }, { environment: t.config.environments.staging!, targetUrl: t.targets.staging.url, log: () => undefined });
    assert.deepEqual(await t.app.services.apply.reconcile({ expiredLeasesOnly: true }), []);
    const run = await runOf(id);
    assert.equal(run.status, 'restored', JSON.stringify(run.error));
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback;
    assert.equal(report.reconciliation.restoreCommitted, true);
    assert.equal(report.failure, null);
    assert.equal((await t.control.query('SELECT count(*)::int AS n FROM migration_ledger WHERE run_id = $1', [id])).rows[0].n, 0);
    assert.equal((await t.control.query('SELECT status FROM rollback_requests WHERE id = $1', [request.id])).rows[0].status, 'succeeded');
    assert.equal((await t.control.query('SELECT lease_owner FROM runs WHERE id = $1', [id])).rows[0].lease_owner, null);
    assert.deepEqual((await t.targets.staging.query('SELECT name FROM pgmigrations ORDER BY id')).rows.map((r) => r.name), ['1000_etl-control', '1100_create-accounts']);
  });

  test('an owner silent for two lease lengths whose session still holds the lock: its session is terminated and the run reconciled', async () => {
    const id = await approvedRun();
    await t.control.query(`UPDATE runs SET status = 'applying', lease_owner = 'ghost:1:silent', lease_expires_at = now() - interval '1 hour' WHERE id = $1`, [id]);
    const holder = new pg.Client({ connectionString: t.control.url });
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(7318, hashtext($1))', [id]);
    assert.deepEqual(await t.app.services.apply.reconcile({ expiredLeasesOnly: true }), [id]);
    assert.equal((await runOf(id)).status, 'interrupted');
    await assert.rejects(holder.query('SELECT 1'), 'the silent owner\'s control session was terminated');
    await holder.end().catch(() => undefined);
  });

  test('a terminated owner session that lets go of the lock only as it exits: the sweep waits for the lock, not tries once', async (tc) => {
    const id = await approvedRun();
    await t.control.query(`UPDATE runs SET status = 'applying', lease_owner = 'ghost:1:slow', lease_expires_at = now() - interval '1 hour' WHERE id = $1`, [id]);
    const holder = new pg.Client({ connectionString: t.control.url });
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(7318, hashtext($1))', [id]);
    const { rows: [me] } = await holder.query('SELECT pg_backend_pid() AS pid, current_database() AS db');
    // Stopped, the holder's backend cannot act on pg_terminate_backend: the moment
    // between the signal and its exit, which a loaded machine stretches, held open.
    const title = await readFile(`/proc/${me.pid}/cmdline`, 'utf8').catch(() => '');
    if (!title.includes(` ${me.db} `)) {
      await holder.end();
      tc.skip('the control database\'s backends are not local processes this test can stop');
      return;
    }
    process.kill(me.pid, 'SIGSTOP');
    try {
      let settled = false;
      const swept = t.app.services.apply.reconcile({ expiredLeasesOnly: true }).finally(() => { settled = true; });
      // Let the backend go on only once the sweep waits for the run's lock (or has given up on it).
      for (;;) {
        const { rows: [w] } = await t.control.query(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = 7318 AND objid = hashtext($1)::oid`, [id]);
        if (w.n > 0 || settled) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      process.kill(me.pid, 'SIGCONT');
      assert.deepEqual(await swept, [id], 'reconciled in the sweep that terminated its owner');
    } finally {
      try {
        process.kill(me.pid, 'SIGCONT');
      } catch {
        // Already gone: it exited after the first SIGCONT.
      }
      await holder.end().catch(() => undefined);
    }
    assert.equal((await runOf(id)).status, 'interrupted');
  });
});
