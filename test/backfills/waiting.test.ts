// When a backfill must not work: outside its environment's windows (windowOnly),
// during a freeze, and while the target is under pressure. It waits, says why,
// changes no row meanwhile, and goes on by itself afterwards.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { scrape } from '../metrics/scrape.js';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { configSource, createItems, definitionsDir, itemsDefinition, until, updateHistogram, type DefinitionsDir } from './helpers.js';

let t: TestApp;
let defs: DefinitionsDir;
let freezeEnds: number;

before(async () => {
  defs = await definitionsDir();
  // The freeze test runs first; the freeze ends some seconds after the app starts: long enough for the set-up
  // below (two targets of 2,000 rows) under a loaded CI machine, where 7 s was sometimes over before the job began.
  freezeEnds = Date.now() + 14_000;
  t = await startTestApp({
    label: 'bf_wait',
    migrationConfigSource: configSource(defs.dir,
      // staging: frozen for the first seconds of the test; at most 2 other active sessions.
      { freezes: [{ from: new Date(Date.now() - 60_000).toISOString(), to: new Date(freezeEnds).toISOString(), reason: 'test freeze' }], backfillPressure: { maxActiveSessions: 2 } },
      // production: one window, on New Year's midnight only.
      { windows: [{ cron: '0 0 1 1 *', durationMinutes: 1, timezone: 'UTC' }] }),
  });
  for (const db of [t.targets.staging, t.targets.production]) await createItems(db, 2000);
  await defs.write('items-power', itemsDefinition());
  await defs.write('items-power-2', itemsDefinition());
  t.app.services.backfillExecutor.start();
});

after(async () => {
  await t?.close();
  await defs?.remove();
});

const start = async (body: object) => {
  const res = await t.http().post('/v1/backfills').set('authorization', bearer('olga')).send(body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
};
const job = async (id: string) => (await t.http().get(`/v1/backfills/${id}`).set('authorization', bearer('vic'))).body;

test('windowOnly during a freeze: the job waits until the freeze ends, then runs by itself', { timeout: 45_000 }, async () => {
  const id = await start({ environment: 'staging', name: 'items-power', windowOnly: true });
  const w = await until('the freeze wait', async () => {
    const j = await job(id);
    return j.waiting ? j : undefined;
  });
  assert.match(w.waiting, /frozen until .* \(test freeze\)/);
  assert.equal(w.rowsScanned, 0);
  assert.ok(Date.now() < freezeEnds, 'the freeze is still on');
  const done = await until('the job after the freeze', async () => {
    const j = await job(id);
    return j.status === 'succeeded' ? j : undefined;
  }, 20_000);
  assert.ok(new Date(done.startedAt).getTime() >= freezeEnds, `started ${done.startedAt}, freeze ended ${new Date(freezeEnds).toISOString()}`);
  assert.deepEqual(await updateHistogram(t.targets.staging), { 1: 2000 });
});

test('windowOnly: outside the windows a job waits (saying until when) and changes nothing; a job without windowOnly runs meanwhile', { timeout: 30_000 }, async () => {
  const db = t.targets.production;
  const waiting = await start({ environment: 'production', name: 'items-power', windowOnly: true });
  const w = await until('the window wait', async () => {
    const j = await job(waiting);
    return j.waiting ? j : undefined;
  });
  assert.equal(w.status, 'pending', 'never started');
  assert.match(w.waiting, /outside the maintenance windows \(the next opens \d{4}-01-01T00:00:00\.000Z\)/);
  assert.equal(w.lease, null);

  const free = await start({ environment: 'production', name: 'items-power-2' });
  const done = await until('the other job', async () => {
    const j = await job(free);
    return j.status === 'succeeded' ? j : undefined;
  });
  assert.equal(done.rowsDone, 2000);
  const still = await job(waiting);
  assert.equal(still.status, 'pending');
  assert.equal(still.rowsScanned, 0);
  assert.deepEqual(await updateHistogram(db), { 1: 2000 }, 'only the free job changed rows');
  assert.equal((await t.http().post(`/v1/backfills/${waiting}/cancel`).set('authorization', bearer('olga')).send({})).status, 200);
});

test('under pressure (more active sessions than allowed) a running job backs off without a batch, and resumes when it clears', { timeout: 30_000 }, async () => {
  const db = t.targets.staging;
  await db.query('ALTER TABLE items DISABLE TRIGGER items_count_updates; UPDATE items SET power = NULL, updates = 0; ALTER TABLE items ENABLE TRIGGER items_count_updates');
  const sleepers = await Promise.all([0, 1, 2].map(async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    return c;
  }));
  const sleeping = sleepers.map((c) => c.query('SELECT pg_sleep(3)'));
  const id = await start({ environment: 'staging', name: 'items-power-2', batchSize: 200 });
  const w = await until('the back-off', async () => {
    const j = await job(id);
    return j.waiting ? j : undefined;
  });
  assert.equal(w.status, 'running');
  assert.match(w.waiting, /target under pressure: [3-9] active sessions \(more than 2\)/);
  assert.equal(w.rowsScanned, 0);
  assert.ok(w.lease, 'it keeps its lease while it waits');
  await Promise.all(sleeping);
  await Promise.all(sleepers.map((c) => c.end()));
  const done = await until('the job after the pressure', async () => {
    const j = await job(id);
    return j.status === 'succeeded' ? j : undefined;
  }, 20_000);
  assert.equal(done.rowsDone, 2000);
  assert.equal(done.waiting, null);
  assert.deepEqual(await updateHistogram(db), { 1: 2000 });
  const m = await scrape(t);
  assert.ok((m.value('starforge_backfill_backoffs_total', { environment: 'staging', backfill: 'items-power-2', reason: 'pressure' }) ?? 0) >= 1);
});
