// GET /v1/runs/:id and GET /v1/runs are named prepared statements on the
// control pool. A rolling upgrade's migration may add a column to runs while
// this process serves reads: its cached statements must keep working.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import { api, type ApiRun } from './helpers.js';

let t: TestApp;
let runs: ApiRun[];

before(async () => {
  t = await startTestApp({ label: 'reads' });
  const first = await api(t).create('alice', { environment: 'staging', description: 'read me' });
  assert.equal(first.status, 201, first.text);
  const cancelled = await api(t).cancel(first.body.id, 'root');
  assert.equal(cancelled.status, 200, cancelled.text);
  const second = await api(t).create('amy', { environment: 'staging', description: 'and me' });
  assert.equal(second.status, 201, second.text);
  await t.settle();
  runs = [first.body, second.body];
});
after(() => t.close());

/** Every read shape at once, 10 of each: enough to prepare them on every pooled connection. */
async function readAll() {
  const reads = Array.from({ length: 10 }, () => [
    api(t).get(runs[0]!.id),
    api(t).get(runs[1]!.id),
    api(t).list(),
    api(t).list({ environment: 'staging', limit: 1 }),
    api(t).list({ status: 'cancelled' }),
  ]).flat();
  const responses = await Promise.all(reads);
  for (const res of responses) assert.equal(res.status, 200, res.text);
  return responses.slice(0, 5).map((res) => res.body);
}

test('reads answer the same after a migration adds a column to runs mid-flight', async () => {
  const before = await readAll();
  assert.equal(before[0].id, runs[0]!.id);
  assert.deepEqual(before[2].items.map((r: ApiRun) => r.id), [runs[1]!.id, runs[0]!.id]);
  assert.deepEqual(before[3].items.map((r: ApiRun) => r.id), [runs[1]!.id]);
  assert.deepEqual(before[4].items.map((r: ApiRun) => r.id), [runs[0]!.id]);

  await t.control.query(`ALTER TABLE runs ADD COLUMN rollout_note text NOT NULL DEFAULT 'next version'`);
  assert.deepEqual(await readAll(), before);

  // And after one is dropped again (the rolling upgrade rolled back).
  await t.control.query('ALTER TABLE runs DROP COLUMN rollout_note');
  assert.deepEqual(await readAll(), before);
});
