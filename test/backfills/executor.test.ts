// The executor on real PostgreSQL: a 100k-row backfill changes every row
// exactly once; poison rows are isolated, recorded and re-runnable alone; the
// throttle holds; readers are never blocked longer than a batch; and the
// repo's example definition runs the whole add -> backfill -> enforce on the
// StarForge schema.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { PROJECT_ROOT } from '../../database/paths.js';
import { scrape } from '../metrics/scrape.js';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { applyMigrations } from '../support/migrations.js';
import { configSource, createItems, definitionsDir, itemsDefinition, until, updateHistogram, type DefinitionsDir } from './helpers.js';

let t: TestApp;
let defs: DefinitionsDir;

before(async () => {
  defs = await definitionsDir();
  // production reads the repo's own database/backfills (the default backfillsDir).
  t = await startTestApp({ label: 'bf_exec', migrationConfigSource: configSource(defs.dir, {}, { backfillsDir: undefined }) });
  assert.equal(t.config.environments.production!.backfillsDir, join(PROJECT_ROOT, 'database/backfills'));
  t.app.services.backfillExecutor.start();
});

after(async () => {
  await t?.close();
  await defs?.remove();
});

const start = async (body: object) => {
  const res = await t.http().post('/v1/backfills').set('authorization', bearer('olga')).send(body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body as { id: string; status: string };
};
const job = async (id: string) => (await t.http().get(`/v1/backfills/${id}`).set('authorization', bearer('vic'))).body;
const finished = (id: string, timeoutMs = 60_000) => until(`job ${id} to finish`, async () => {
  const j = await job(id);
  return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
}, timeoutMs, 100);

describe('a 100k-row backfill', () => {
  test('changes every row exactly once, checkpoints as it goes, is audited on the target and in the control database, and is measured', { timeout: 90_000 }, async () => {
    const db = t.targets.staging;
    await createItems(db, 100_000);
    await defs.write('items-power', itemsDefinition());
    const created = await start({ environment: 'staging', name: 'items-power', batchSize: 2000, reason: 'fill power' });
    assert.equal(created.status, 'pending');

    const done = await finished(created.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.deepEqual(await updateHistogram(db), { 1: 100_000 }, 'every row updated exactly once');
    const wrong = await db.query(`SELECT count(*)::int AS n FROM items WHERE power IS DISTINCT FROM (raw->>'power')::int`);
    assert.equal(wrong.rows[0].n, 0);
    assert.equal(done.rowsDone, 100_000);
    assert.equal(done.rowsScanned, 100_000);
    assert.equal(done.rowsFailed, 0);
    assert.equal(done.batches, 50);
    assert.equal(done.lastKey, '100000');
    assert.equal(done.remainingRows, 0);
    assert.equal(done.progress, 1);
    assert.equal(done.lease, null);
    assert.ok(done.maxBatchMs > 0);

    // The job row and its events are on the target, in their own schema.
    const onTarget = await db.query('SELECT type, actor, from_status, to_status FROM sfm_backfill.backfill_events WHERE job_id = $1 ORDER BY seq', [created.id]);
    assert.deepEqual(onTarget.rows.map((e) => [e.type, e.actor, e.from_status, e.to_status]), [
      ['backfill.pending', 'olga', null, 'pending'],
      ['backfill.running', 'backfills', 'pending', 'running'],
      ['backfill.succeeded', 'backfills', 'running', 'succeeded'],
    ]);
    await assert.rejects(db.query('UPDATE sfm_backfill.backfill_events SET actor = $1', ['mallory']), /append-only/);
    await assert.rejects(db.query('DELETE FROM sfm_backfill.backfill_events'), /append-only/);

    // The same events, copied once each, in the control database's audit trail.
    const mirrored = await until('the audit copy', async () => {
      const { rows } = await t.control.query(`SELECT run_id, environment, type, actor, details FROM run_events WHERE details->>'jobId' = $1 ORDER BY created_at, id`, [created.id]);
      return rows.length === 3 ? rows : undefined;
    });
    assert.deepEqual(mirrored.map((e) => [e.run_id, e.environment, e.type, e.actor]), [
      [null, 'staging', 'backfill.pending', 'olga'],
      [null, 'staging', 'backfill.running', 'backfills'],
      [null, 'staging', 'backfill.succeeded', 'backfills'],
    ]);
    assert.equal(mirrored[0].details.name, 'items-power');
    assert.equal(mirrored[0].details.reason, 'fill power');
    assert.equal(mirrored[2].details.rowsDone, 100_000);
    const eventIds = (await db.query('SELECT id FROM sfm_backfill.backfill_events WHERE job_id = $1 ORDER BY seq', [created.id])).rows.map((r) => r.id);
    assert.deepEqual(mirrored.map((e) => e.details.eventId), eventIds);
    // Copying again (another replica, a retried sweep) adds nothing.
    await t.targets.staging.query('DELETE FROM sfm_backfill.backfill_event_receipts');
    await t.app.services.backfillExecutor.flush(t.config.environments.staging!);
    const again = await t.control.query(`SELECT count(*)::int AS n FROM run_events WHERE details->>'jobId' = $1`, [created.id]);
    assert.equal(again.rows[0].n, 3);

    const m = await scrape(t);
    assert.equal(m.value('starforge_backfill_rows_processed_total', { environment: 'staging', backfill: 'items-power' }), 100_000);
    assert.equal(m.value('starforge_backfill_rows_failed_total', { environment: 'staging', backfill: 'items-power' }), 0);
    assert.equal(m.value('starforge_backfill_progress_ratio', { environment: 'staging', backfill: 'items-power' }), 1);
  });
});

describe('poison rows', () => {
  test('are isolated by halving, recorded with their error and skipped; the rest completes; the failures re-run alone', { timeout: 60_000 }, async () => {
    const db = t.targets.staging;
    await createItems(db, 5000, 'poison');
    await db.query(`ALTER TABLE poison DISABLE TRIGGER poison_count_updates;
      UPDATE poison SET raw = '{"power": "lots"}' WHERE id IN (1234, 4321);
      ALTER TABLE poison ENABLE TRIGGER poison_count_updates`);
    await defs.write('poison-power', itemsDefinition('poison'));
    const created = await start({ environment: 'staging', name: 'poison-power', batchSize: 500 });
    const done = await finished(created.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.rowsDone, 4998);
    assert.equal(done.rowsFailed, 2);
    assert.equal(done.openFailures, 2);
    assert.deepEqual(await updateHistogram(db, 'poison'), { 0: 2, 1: 4998 }, 'every good row once, the poison rows never');
    // 10 full batches plus about log2(500) bisection steps per poison row; not one transaction per row after it.
    assert.ok(done.batches < 60, `${done.batches} batches`);

    const failures = (await t.http().get(`/v1/backfills/${created.id}/failures`).set('authorization', bearer('vic'))).body;
    assert.deepEqual(failures.items.map((f: { key: string; sqlstate: string }) => [f.key, f.sqlstate]), [['1234', '22P02'], ['4321', '22P02']]);
    assert.match(failures.items[0].error, /invalid input syntax for type integer: "lots"/);
    assert.equal(failures.nextAfter, null);

    // Not fixed yet: re-running fails again, recorded under the new job; the rest is untouched.
    const retry1 = await t.http().post(`/v1/backfills/${created.id}/retry-failures`).set('authorization', bearer('olga')).send({});
    assert.equal(retry1.status, 202, JSON.stringify(retry1.body));
    assert.equal(retry1.body.failuresOf, created.id);
    const r1 = await finished(retry1.body.id);
    assert.equal(r1.status, 'succeeded');
    assert.equal(r1.rowsFailed, 2);
    assert.equal(r1.rowsDone, 0);
    assert.equal((await job(created.id)).openFailures, 2, 'still open on the original job');

    // Fixed data: the failures-only job changes exactly those two rows (once), and resolves them.
    await db.query(`ALTER TABLE poison DISABLE TRIGGER poison_count_updates;
      UPDATE poison SET raw = jsonb_build_object('power', id % 1000) WHERE id IN (1234, 4321);
      ALTER TABLE poison ENABLE TRIGGER poison_count_updates`);
    const retry2 = await t.http().post('/v1/backfills').set('authorization', bearer('root'))
      .send({ environment: 'staging', name: 'poison-power', failuresOf: created.id });
    assert.equal(retry2.status, 202, JSON.stringify(retry2.body));
    const r2 = await finished(retry2.body.id);
    assert.equal(r2.status, 'succeeded');
    assert.equal(r2.rowsDone, 2);
    assert.equal(r2.rowsScanned, 2);
    assert.equal(r2.rowsFailed, 0);
    assert.deepEqual(await updateHistogram(db, 'poison'), { 1: 5000 });
    const resolved = (await t.http().get(`/v1/backfills/${created.id}/failures`).set('authorization', bearer('vic'))).body.items;
    assert.deepEqual(resolved.map((f: { resolvedBy: string }) => f.resolvedBy), [retry2.body.id, retry2.body.id]);
    assert.equal((await job(created.id)).openFailures, 0);

    const nothingLeft = await t.http().post(`/v1/backfills/${created.id}/retry-failures`).set('authorization', bearer('olga')).send({});
    assert.equal(nothingLeft.status, 409);
    assert.match(nothingLeft.body.detail, /no failed rows left/);

    const m = await scrape(t);
    assert.equal(m.value('starforge_backfill_rows_failed_total', { environment: 'staging', backfill: 'poison-power' }), 4);
  });
});

describe('throttle and readers', () => {
  test('maxRowsPerSecond holds within 20%', { timeout: 60_000 }, async () => {
    const db = t.targets.staging;
    await createItems(db, 12_000, 'paced');
    await defs.write('paced-power', itemsDefinition('paced'));
    const created = await start({ environment: 'staging', name: 'paced-power', batchSize: 5000, maxRowsPerSecond: 4000 });
    const done = await finished(created.id);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(await updateHistogram(db, 'paced'), { 1: 12_000 });
    // From the first batch to the last commit, as the target saw it.
    const { rows } = await db.query(`SELECT min(at) AS first, max(at) AS last FROM sfm_backfill.backfill_events WHERE job_id = $1 AND type IN ('backfill.running', 'backfill.succeeded')`, [created.id]);
    const seconds = (rows[0].last.getTime() - rows[0].first.getTime()) / 1000;
    const rate = 12_000 / seconds;
    assert.ok(rate >= 3200 && rate <= 4800, `rate ${rate.toFixed(0)} rows/s over ${seconds.toFixed(2)} s; limit 4000`);
    assert.equal(done.batches, 15, 'batches of at most a fifth of a second\'s rows (800)');
  });

  test('a reader locking rows of the table never waits longer than one batch', { timeout: 60_000 }, async () => {
    const db = t.targets.staging;
    await createItems(db, 20_000, 'busy');
    await defs.write('busy-power', itemsDefinition('busy'));
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    let worstLock = 0;
    let worstPlain = 0;
    let reads = 0;
    let reading = true;
    const loop = (async () => {
      while (reading) {
        const id = 1 + Math.floor(Math.random() * 20_000);
        let t0 = performance.now();
        await reader.query('SELECT power FROM busy WHERE id = $1 FOR UPDATE', [id]);
        worstLock = Math.max(worstLock, performance.now() - t0);
        t0 = performance.now();
        await reader.query('SELECT count(*) FROM busy WHERE power IS NULL');
        worstPlain = Math.max(worstPlain, performance.now() - t0);
        reads += 1;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const began = performance.now();
    const created = await start({ environment: 'staging', name: 'busy-power', batchSize: 2000, maxRowsPerSecond: 8000 });
    const done = await finished(created.id);
    const tookMs = performance.now() - began;
    reading = false;
    await loop;
    await reader.end();
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(await updateHistogram(db, 'busy'), { 1: 20_000 });
    assert.ok(tookMs > 2000, `the backfill ran ${tookMs.toFixed(0)} ms`);
    assert.ok(reads > 100, `${reads} reads`);
    // Row locks live only as long as one batch transaction.
    assert.ok(worstLock <= done.maxBatchMs + 150, `worst locking read ${worstLock.toFixed(0)} ms, longest batch ${done.maxBatchMs} ms`);
    assert.ok(worstLock < tookMs / 4, `worst locking read ${worstLock.toFixed(0)} ms of a ${tookMs.toFixed(0)} ms backfill`);
    assert.ok(worstPlain < 500, `plain reads never wait on the backfill (${worstPlain.toFixed(0)} ms)`);
  });
});

describe('the example definition (database/backfills/hero-snapshots-total-power.json)', () => {
  test('runs add -> backfill -> enforce on the StarForge schema', { timeout: 60_000 }, async () => {
    const db = t.targets.production;
    await applyMigrations(db.url, join(PROJECT_ROOT, 'database/migrations'), Infinity);
    await db.query(`INSERT INTO hero_snapshots (user_id, raw)
      SELECT 'u' || g, jsonb_build_object('schemaVersion', 1, 'player', jsonb_build_object('id', 'u' || g, 'name', 'p', 'level', 1),
        'heroes', jsonb_build_array(jsonb_build_object('id', 'a', 'name', 'A', 'level', 1, 'power', g), jsonb_build_object('id', 'b', 'name', 'B', 'level', 1, 'power', 10)),
        'troops', '[]'::jsonb)
      FROM generate_series(1, 3000) g`);
    await db.query(`INSERT INTO hero_snapshots (user_id, raw) VALUES ('bad', '{"schemaVersion": 1, "heroes": [{"power": "lots"}]}'), ('empty', '{"schemaVersion": 1}')`);

    // Before step 1 the definition does not fit the database: refused, nothing created.
    const early = await t.http().post('/v1/backfills').set('authorization', bearer('olga')).send({ environment: 'production', name: 'hero-snapshots-total-power' });
    assert.equal(early.status, 422);
    assert.match(early.body.detail, /column s\.total_power does not exist \(SQLSTATE 42703\)/);

    // 1. add: a nullable column, no default (no rewrite, no scan).
    await db.query('ALTER TABLE hero_snapshots ADD COLUMN total_power bigint');
    // 2. backfill.
    const created = await start({ environment: 'production', name: 'hero-snapshots-total-power', batchSize: 500 });
    const done = await finished(created.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.rowsDone, 3001);
    assert.equal(done.rowsFailed, 1);
    const sums = await db.query(`SELECT count(*) FILTER (WHERE total_power = CASE WHEN user_id ~ '^u[0-9]+$' THEN substr(user_id, 2)::bigint + 10 END)::int AS right,
      count(*) FILTER (WHERE total_power IS NULL)::int AS missing, max(total_power) FILTER (WHERE user_id = 'empty') AS empty FROM hero_snapshots`);
    assert.deepEqual(sums.rows[0], { right: 3000, missing: 1, empty: '0' });
    // Enforcing now would fail on the recorded row: fix its data, re-run just that row.
    await db.query(`UPDATE hero_snapshots SET raw = '{"schemaVersion": 1, "heroes": [{"power": 7}]}' WHERE user_id = 'bad'`);
    const retry = await t.http().post(`/v1/backfills/${created.id}/retry-failures`).set('authorization', bearer('olga'));
    assert.equal(retry.status, 202, JSON.stringify(retry.body));
    const fixed = await finished(retry.body.id);
    assert.equal(fixed.rowsDone, 1);
    assert.equal(fixed.rowsScanned, 1);
    // 3. enforce: a NOT VALID check (no scan under the lock), VALIDATE (scan without blocking writes), SET NOT NULL (uses the check).
    await db.query('ALTER TABLE hero_snapshots ADD CONSTRAINT hero_snapshots_total_power_not_null CHECK (total_power IS NOT NULL) NOT VALID');
    await db.query('ALTER TABLE hero_snapshots VALIDATE CONSTRAINT hero_snapshots_total_power_not_null');
    await db.query('ALTER TABLE hero_snapshots ALTER COLUMN total_power SET NOT NULL');
    await db.query('ALTER TABLE hero_snapshots DROP CONSTRAINT hero_snapshots_total_power_not_null');
    const col = await db.query(`SELECT is_nullable FROM information_schema.columns WHERE table_name = 'hero_snapshots' AND column_name = 'total_power'`);
    assert.equal(col.rows[0].is_nullable, 'NO');
  });
});
