// ETL health: backlog, oldest unprocessed age, errors and the pause flag in
// /metrics and GET /v1/etl/health, read from real hero_snapshots / etl_errors
// rows; the worker's processed/failed counters; pause and resume, audited,
// with the flag left alone when the audit cannot be written.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, test } from 'node:test';
import pg from 'pg';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { applyRepoMigrations, assertProblem } from '../runs/helpers.js';
import { scrape } from './scrape.js';

let t: TestApp;
const as = (who: Subject) => ({ authorization: bearer(who) });

function raw(userId: string) {
  return { schemaVersion: 1, player: { id: userId, name: `Player ${userId}`, level: 3 }, heroes: [{ id: 'h1', name: 'Ayla', level: 2, power: 120 }], troops: [{ type: 'archer', tier: 1, count: 10 }] };
}

async function insertSnapshot(userId: string, ageSeconds: number, rawValue: unknown, processed = false): Promise<string> {
  const res = await t.targets.staging.query(
    `INSERT INTO hero_snapshots (user_id, raw, created_at, processed_at) VALUES ($1, $2, now() - make_interval(secs => $3), CASE WHEN $4 THEN now() END) RETURNING id`,
    [userId, JSON.stringify(rawValue), ageSeconds, processed],
  );
  return res.rows[0].id as string;
}

const health = (environment = 'staging', who: Subject = 'vic') => t.http().get('/v1/etl/health').query({ environment }).set(as(who));
const control = (action: 'pause' | 'resume', body: object, who: Subject = 'olga') => t.http().post(`/v1/etl/${action}`).set(as(who)).send(body);

async function etlEvents(): Promise<Array<{ run_id: string | null; environment: string; type: string; actor: string; details: { reason?: string } }>> {
  return (await t.control.query(`SELECT run_id, environment, type, actor, details FROM run_events WHERE type LIKE 'etl.%' ORDER BY id`)).rows;
}

before(async () => {
  t = await startTestApp({ label: 'metrics_etl', env: { ETL_WORKER: 'on' } });
  await applyRepoMigrations(t.targets.staging, 8);
});
after(async () => t?.close());

describe('ETL figures', () => {
  beforeEach(async () => {
    await t.targets.staging.query('TRUNCATE hero_snapshots, etl_errors, user_profile_summary, user_troops');
    await t.targets.staging.query('UPDATE etl_control SET paused = false, reason = NULL, changed_by = NULL');
  });

  test('backlog, oldest unprocessed age and errors of the last hour come from the target rows', async () => {
    await insertSnapshot('u1', 300, raw('u1'));
    await insertSnapshot('u2', 60, raw('u2'));
    await insertSnapshot('u3', 5, raw('u3'));
    await insertSnapshot('u4', 900, raw('u4'), true); // processed: neither backlog nor oldest
    const failed = await insertSnapshot('u5', 7200, raw('u5'), true);
    await t.targets.staging.query(`INSERT INTO etl_errors (snapshot_id, error_type, message, created_at) VALUES
      ($1, 'invalid_snapshot', 'old one', now() - interval '2 hours'),
      ($1, 'processing_error', 'first', now() - interval '10 minutes'),
      (NULL, 'processing_error', 'second', now() - interval '1 minute')`, [failed]);

    const m = await scrape(t);
    assert.equal(m.value('starforge_target_up', { environment: 'staging' }), 1);
    assert.equal(m.value('starforge_etl_backlog_snapshots', { environment: 'staging' }), 3);
    const age = m.value('starforge_etl_oldest_unprocessed_age_seconds', { environment: 'staging' })!;
    assert.ok(age >= 300 && age < 330, `oldest age ${age}`);
    assert.equal(m.value('starforge_etl_errors_last_hour', { environment: 'staging' }), 2);
    assert.equal(m.value('starforge_etl_paused', { environment: 'staging' }), 0);
    // production has no StarForge tables: it answers, but has no ETL figures.
    assert.equal(m.value('starforge_target_up', { environment: 'production' }), 1);
    assert.equal(m.value('starforge_etl_backlog_snapshots', { environment: 'production' }), undefined);

    const res = await health();
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.environment, 'staging');
    assert.equal(res.body.backlog, 3);
    assert.ok(res.body.oldestUnprocessedAgeSeconds >= 300 && res.body.oldestUnprocessedAgeSeconds < 330);
    assert.equal(res.body.processedLastHour, 2);
    assert.equal(res.body.failedLastHour, 2);
    assert.equal(res.body.paused, false);
    assert.equal(res.body.pausedBy, null);
    assert.deepEqual(res.body.recentErrors.map((e: { message: string }) => e.message), ['second', 'first', 'old one'], 'newest first');
    const first = res.body.recentErrors[1];
    assert.equal(first.snapshotId, failed);
    assert.equal(first.errorType, 'processing_error');
    assert.match(first.id, /^\d+$/);
    assert.ok(Date.parse(first.createdAt) < Date.now());
  });

  test('an empty backlog has an oldest age of 0, not a missing series', async () => {
    const m = await scrape(t);
    assert.equal(m.value('starforge_etl_backlog_snapshots', { environment: 'staging' }), 0);
    assert.equal(m.value('starforge_etl_oldest_unprocessed_age_seconds', { environment: 'staging' }), 0);
    assert.equal((await health()).body.oldestUnprocessedAgeSeconds, 0);
  });

  test('the ETL worker processing snapshots moves the processed and failed counters and empties the backlog', async () => {
    await insertSnapshot('w1', 30, raw('w1'));
    await insertSnapshot('w2', 20, raw('w2'));
    await insertSnapshot('w3', 10, { schemaVersion: 99 });
    const before = await scrape(t);
    assert.equal(before.value('starforge_etl_backlog_snapshots', { environment: 'staging' }), 3);
    const processed0 = before.value('starforge_etl_snapshots_processed_total', { environment: 'staging' })!;
    const failed0 = before.value('starforge_etl_snapshots_failed_total', { environment: 'staging' })!;
    assert.equal(typeof processed0, 'number', 'the counter has a zero sample from the start');

    t.app.services.etlWorkers.start();
    try {
      const deadline = Date.now() + 10_000;
      while ((await t.targets.staging.query('SELECT count(*)::int AS n FROM hero_snapshots WHERE processed_at IS NULL')).rows[0].n > 0) {
        assert.ok(Date.now() < deadline, 'the worker processed the backlog');
        await sleep(50);
      }
    } finally {
      await t.app.services.etlWorkers.stop();
    }
    const after = await scrape(t);
    assert.equal(after.value('starforge_etl_snapshots_processed_total', { environment: 'staging' }), processed0 + 2);
    assert.equal(after.value('starforge_etl_snapshots_failed_total', { environment: 'staging' }), failed0 + 1);
    assert.equal(after.value('starforge_etl_backlog_snapshots', { environment: 'staging' }), 0);
    assert.equal(after.value('starforge_etl_errors_last_hour', { environment: 'staging' }), 1);
    const res = await health();
    assert.equal(res.body.processedLastHour, 3, 'processed includes the given-up invalid one');
    assert.equal(res.body.failedLastHour, 1);
    assert.equal(res.body.recentErrors[0].errorType, 'invalid_snapshot');
  });

  test('a target that holds a lock on the ETL tables shows as down within the time box, then up again', async () => {
    const holder = new pg.Client({ connectionString: t.targets.staging.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE etl_control IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      const m = await scrape(t);
      assert.ok(Date.now() - started < 1500, `scrape took ${Date.now() - started} ms`);
      assert.equal(m.value('starforge_target_up', { environment: 'staging' }), 0);
      assert.equal(m.value('starforge_etl_paused', { environment: 'staging' }), undefined, 'no stale figure for a target that did not answer');
      assert.equal(m.value('starforge_target_up', { environment: 'production' }), 1);
      const locked = await health();
      assertProblem(locked, 503, /did not answer in time/);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    await sleep(50);
    const waiting = await t.targets.staging.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
    assert.equal(waiting.rows[0].n, 0, 'no metrics read is left waiting for the lock');
    assert.equal((await scrape(t)).value('starforge_target_up', { environment: 'staging' }), 1);
  });

  test('health: any role may read; a bad or unknown environment is a problem, a target without ETL tables is 409', async () => {
    assert.equal((await health('staging', 'alice')).status, 200);
    assert.equal((await t.http().get('/v1/etl/health').query({ environment: 'staging' })).status, 401);
    assertProblem(await t.http().get('/v1/etl/health').set(as('vic')), 400);
    assertProblem(await health('Bad Env!'), 400);
    assertProblem(await health('nowhere'), 404, /Unknown environment "nowhere"/);
    assertProblem(await health('production'), 409, /no ETL tables/);
  });
});

describe('pause and resume', () => {
  before(async () => {
    await t.targets.staging.query('UPDATE etl_control SET paused = false, reason = NULL, changed_by = NULL');
  });

  test('an operator pauses and resumes the ETL; each change is audited with run_id NULL; repeating changes nothing', async () => {
    const events0 = (await etlEvents()).length;
    const paused = await control('pause', { environment: 'staging', reason: 'investigating slow queries' });
    assert.equal(paused.status, 200, paused.text);
    assert.equal(paused.body.paused, true);
    assert.equal(paused.body.changed, true);
    assert.equal(paused.body.pausedBy, 'olga');
    assert.equal(paused.body.pauseReason, 'investigating slow queries');
    const flag = (await t.targets.staging.query('SELECT paused, reason, changed_by FROM etl_control')).rows[0];
    assert.deepEqual(flag, { paused: true, reason: 'investigating slow queries', changed_by: 'olga' });
    let events = await etlEvents();
    assert.equal(events.length, events0 + 1);
    assert.deepEqual(events.at(-1), { run_id: null, environment: 'staging', type: 'etl.paused', actor: 'olga', details: { reason: 'investigating slow queries' } });

    assert.equal((await scrape(t)).value('starforge_etl_paused', { environment: 'staging' }), 1);
    const h = await health();
    assert.equal(h.body.paused, true);
    assert.equal(h.body.pausedBy, 'olga');
    assert.equal(h.body.pauseReason, 'investigating slow queries');

    const again = await control('pause', { environment: 'staging', reason: 'again' });
    assert.equal(again.status, 200);
    assert.equal(again.body.changed, false);
    assert.equal(again.body.pauseReason, 'investigating slow queries', 'the first pause and its reason stand');
    assert.equal((await etlEvents()).length, events0 + 1, 'nothing audited for a no-op');

    const resumed = await control('resume', { environment: 'staging', reason: 'queries fixed' }, 'root');
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.paused, false);
    assert.equal(resumed.body.changed, true);
    events = await etlEvents();
    assert.deepEqual(events.at(-1), { run_id: null, environment: 'staging', type: 'etl.resumed', actor: 'root', details: { reason: 'queries fixed' } });
    assert.equal((await t.targets.staging.query('SELECT paused FROM etl_control')).rows[0].paused, false);
    assert.equal((await scrape(t)).value('starforge_etl_paused', { environment: 'staging' }), 0);
  });

  test('when the audit event cannot be written the flag is left as it was', async () => {
    await t.control.query(`
      CREATE FUNCTION refuse_etl_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit store refuses'; END $$;
      CREATE TRIGGER refuse_etl_audit BEFORE INSERT ON run_events FOR EACH ROW WHEN (NEW.type = 'etl.paused') EXECUTE FUNCTION refuse_etl_audit();`);
    try {
      const events0 = (await etlEvents()).length;
      const res = await control('pause', { environment: 'staging', reason: 'should not stick' });
      assertProblem(res, 503, /audit event could not be written/);
      assert.ok(!res.text.includes('audit store refuses'), 'no database message in the response');
      assert.equal((await t.targets.staging.query('SELECT paused FROM etl_control')).rows[0].paused, false, 'flag rolled back');
      assert.equal((await etlEvents()).length, events0);
      const locks = await t.targets.staging.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`);
      assert.equal(locks.rows[0].n, 0, 'no transaction left open on the target');
    } finally {
      await t.control.query('DROP TRIGGER refuse_etl_audit ON run_events; DROP FUNCTION refuse_etl_audit();');
    }
  });

  test('only operators (and admins) may pause; the body is validated; a run that holds the workers blocks resume', async () => {
    assertProblem(await control('pause', { environment: 'staging', reason: 'x' }, 'vic'), 403);
    assertProblem(await control('pause', { environment: 'staging', reason: 'x' }, 'carol'), 403);
    assertProblem(await t.http().post('/v1/etl/pause').send({ environment: 'staging', reason: 'x' }), 401);
    assertProblem(await control('pause', { environment: 'staging' }), 400);
    assertProblem(await control('pause', { environment: 'staging', reason: '' }), 400);
    assertProblem(await control('pause', { environment: 'staging', reason: 'x', extra: 1 }), 400);
    assertProblem(await control('pause', { environment: 'nowhere', reason: 'x' }), 404);
    assertProblem(await control('pause', { environment: 'production', reason: 'x' }), 409, /no etl_control table/);

    assert.equal((await control('pause', { environment: 'staging', reason: 'before the apply' })).status, 200);
    const run = await t.control.query(`INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals)
      VALUES ('staging', 'applying', 'in flight', 'alice', 'd', '{any}') RETURNING id`);
    try {
      const refused = await control('resume', { environment: 'staging', reason: 'too early' });
      assertProblem(refused, 409, /applying/);
      assert.equal(refused.body.activeRunId, run.rows[0].id);
      assert.equal((await t.targets.staging.query('SELECT paused FROM etl_control')).rows[0].paused, true);
    } finally {
      await t.control.query(`UPDATE runs SET status = 'failed' WHERE id = $1`, [run.rows[0].id]);
    }
    assert.equal((await control('resume', { environment: 'staging', reason: 'apply over' })).status, 200);
  });
});
