// GET /v1/runs: newest first, filters, and cursor pagination without gaps or duplicates.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import { api, assertProblem, type ApiRun } from './helpers.js';

let t: TestApp;
/** Every run this file created, oldest first. */
const created: ApiRun[] = [];

before(async () => {
  t = await startTestApp({ label: 'listing' });
  // 11 runs: alternating environments; all cancelled except the last of each
  // environment, which stays awaiting_approval (production's is approved).
  for (let i = 0; i < 11; i++) {
    const environment = i % 2 ? 'production' : 'staging';
    const res = await api(t).create(i % 3 ? 'alice' : 'amy', { environment, description: `listing ${i}` });
    assert.equal(res.status, 201, res.text);
    created.push(res.body);
    if (i < 9) {
      const c = await api(t).cancel(res.body.id, 'root');
      assert.equal(c.status, 200, c.text);
    }
  }
  await t.settle();
  const lastProduction = created[9]!;
  assert.equal((await api(t).decide(lastProduction.id, 'bob', 'engineering')).status, 201);
  // The repo's production waits for an operator's confirmation after approval.
  assert.equal((await api(t).decide(lastProduction.id, 'carol', 'sre')).body.status, 'approved');
});
after(() => t.close());

async function walk(query: Record<string, string | number>): Promise<{ pages: ApiRun[][]; items: ApiRun[] }> {
  const pages: ApiRun[][] = [];
  let cursor: string | null = null;
  for (;;) {
    const res = await api(t).list(cursor ? { ...query, cursor } : query);
    assert.equal(res.status, 200, res.text);
    assert.ok(Array.isArray(res.body.items));
    pages.push(res.body.items);
    cursor = res.body.nextCursor;
    if (cursor === null) break;
    assert.equal(typeof cursor, 'string');
    assert.ok(pages.length < 50, 'pagination does not end');
  }
  return { pages, items: pages.flat() };
}

const newestFirst = () => [...created].reverse().map((r) => r.id);

test('GET /v1/runs lists every run newest first, with the default limit of 20', async () => {
  const res = await api(t).list();
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.nextCursor, null);
  assert.deepEqual(res.body.items.map((r: ApiRun) => r.id), newestFirst());
  const times = res.body.items.map((r: ApiRun) => Date.parse(r.createdAt));
  for (let i = 1; i < times.length; i++) assert.ok(times[i - 1] >= times[i], 'newest first');
  // Items are full runs.
  const approved = res.body.items.find((r: ApiRun) => r.id === created[9]!.id);
  assert.equal(approved.status, 'approved');
  assert.equal(approved.approvals.length, 2);
  assert.equal(approved.migrations.length, 8);
});

test('walking pages of 3 visits every run once, in order, with no gaps', async () => {
  const { pages, items } = await walk({ limit: 3 });
  assert.deepEqual(pages.map((p) => p.length), [3, 3, 3, 2]);
  assert.deepEqual(items.map((r) => r.id), newestFirst());
  assert.equal(new Set(items.map((r) => r.id)).size, items.length, 'no duplicates');
});

test('a page size that divides the total ends with nextCursor null, not an empty page', async () => {
  const { pages, items } = await walk({ limit: 11 });
  assert.deepEqual(pages.map((p) => p.length), [11]);
  assert.equal(items.length, 11);
  const single = await walk({ limit: 1 });
  assert.equal(single.pages.length, 11);
  assert.deepEqual(single.items.map((r) => r.id), newestFirst());
});

test('filters: environment, status, and both, also across pages', async () => {
  const staging = await walk({ environment: 'staging', limit: 2 });
  assert.deepEqual(staging.items.map((r) => r.id), newestFirst().filter((id) => created.find((r) => r.id === id)!.environment === 'staging'));
  assert.ok(staging.items.every((r) => r.environment === 'staging'));

  const cancelled = await walk({ status: 'cancelled', limit: 4 });
  assert.equal(cancelled.items.length, 9);
  assert.ok(cancelled.items.every((r) => r.status === 'cancelled'));
  assert.deepEqual(cancelled.items.map((r) => r.id), newestFirst().slice(2));

  const awaiting = await walk({ status: 'awaiting_approval' });
  assert.deepEqual(awaiting.items.map((r) => r.id), [created[10]!.id]);

  const both = await walk({ environment: 'production', status: 'approved' });
  assert.deepEqual(both.items.map((r) => r.id), [created[9]!.id]);

  const none = await api(t).list({ status: 'succeeded' });
  assert.deepEqual(none.body, { items: [], nextCursor: null });
});

test('a cursor stays valid while new runs are created: the walk does not repeat or skip older runs', async () => {
  const first = await api(t).list({ limit: 4 });
  const cursor = first.body.nextCursor as string;
  // A new run appears at the top; the rest of the walk is unaffected.
  await api(t).cancel(created[10]!.id, 'root');
  const extra = await api(t).create('alice', { environment: 'staging', description: 'late arrival' });
  assert.equal(extra.status, 201);
  const rest: ApiRun[] = [];
  let next: string | null = cursor;
  while (next) {
    const res = await api(t).list({ limit: 4, cursor: next });
    rest.push(...res.body.items);
    next = res.body.nextCursor;
  }
  assert.deepEqual([...first.body.items, ...rest].map((r: ApiRun) => r.id), newestFirst());
  assert.ok(!rest.some((r) => r.id === extra.body.id));
  await t.settle();
  await api(t).cancel(extra.body.id, 'root');
  created.push(extra.body);
});

test('bad list parameters are 400 problems', async () => {
  assertProblem(await api(t).list({ cursor: 'not-a-cursor' }), 400, /cursor/);
  assertProblem(await api(t).list({ cursor: Buffer.from('id:5').toString('base64url') }), 400);
  assertProblem(await api(t).list({ environment: 'qa' }), 400, /Unknown environment "qa"/);
  assertProblem(await api(t).list({ status: 'pending' }), 400);
  assertProblem(await api(t).list({ limit: 0 }), 400);
  assertProblem(await api(t).list({ limit: 500 }), 400);
});
