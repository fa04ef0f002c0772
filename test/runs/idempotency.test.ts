// Idempotency-Key on POST /v1/runs: a replay returns the same run, a changed
// body is 422, and 50 concurrent identical requests make exactly one run.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import { api, assertNothingWritten, assertProblem, counts, freeEnvironments } from './helpers.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({ label: 'idempotency' });
});
afterEach(() => freeEnvironments(t));
after(() => t.close());

const runCount = async () => (await t.control.query('SELECT count(*)::int AS n FROM runs')).rows[0].n as number;
const createdEvents = async (runId: string) =>
  (await t.control.query("SELECT count(*)::int AS n FROM run_events WHERE run_id = $1 AND type = 'run.created'", [runId])).rows[0].n as number;

test('a replay with the same key and body returns the same run with 200, creating nothing', async () => {
  const body = { environment: 'staging', description: 'idempotent', ticket: 'OPS-9', schedule: { mode: 'now' as const } };
  const first = await api(t).create('alice', body, 'key-replay-1');
  assert.equal(first.status, 201, first.text);
  await t.settle();
  const before = await counts(t);

  const replay = await api(t).create('alice', body, 'key-replay-1');
  assert.equal(replay.status, 200, replay.text);
  assert.equal(replay.body.id, first.body.id);
  assert.equal(replay.headers.location, `/v1/runs/${first.body.id}`);
  assert.equal(replay.body.status, 'awaiting_approval', 'the replay shows the run as it is now');
  // Key order in the JSON body does not matter.
  const reordered = await api(t).create('alice', { schedule: { mode: 'now' }, ticket: 'OPS-9', description: 'idempotent', environment: 'staging' }, 'key-replay-1');
  assert.equal(reordered.status, 200, reordered.text);
  assert.equal(reordered.body.id, first.body.id);
  await t.settle();
  assert.deepEqual(await counts(t), before);
  assert.equal(await createdEvents(first.body.id), 1);
});

test('the same key with a different body is 422 and writes nothing', async () => {
  const first = await api(t).create('alice', { environment: 'staging', description: 'original' }, 'key-mismatch');
  assert.equal(first.status, 201, first.text);
  for (const changed of [
    { environment: 'staging', description: 'changed' },
    { environment: 'staging', description: 'original', ticket: 'OPS-1' },
    { environment: 'staging', description: 'original', schedule: { mode: 'now' } },
    { environment: 'production', description: 'original' },
  ]) {
    const res = await assertNothingWritten(t, () => api(t).create('alice', changed, 'key-mismatch'));
    assertProblem(res, 422, /Idempotency-Key "key-mismatch" was already used with a different request body/);
  }
});

test('a replay of a run that was cancelled meanwhile returns that run, not a new one', async () => {
  const body = { environment: 'production', description: 'cancel then replay' };
  const first = await api(t).create('amy', body, 'key-cancelled');
  assert.equal(first.status, 201);
  await t.settle();
  assert.equal((await api(t).cancel(first.body.id, 'amy')).body.status, 'cancelled');
  const before = await runCount();
  const replay = await api(t).create('amy', body, 'key-cancelled');
  assert.equal(replay.status, 200, replay.text);
  assert.equal(replay.body.id, first.body.id);
  assert.equal(replay.body.status, 'cancelled');
  assert.equal(await runCount(), before);
});

test('keys are scoped to the caller: another subject\'s identical key is a new request', async () => {
  const body = { environment: 'staging', description: 'scoped key' };
  const alice = await api(t).create('alice', body, 'key-shared');
  assert.equal(alice.status, 201);
  // amy's request is not a replay of alice's run: it is refused for the active run alice holds.
  const amy = await assertNothingWritten(t, () => api(t).create('amy', body, 'key-shared'));
  assertProblem(amy, 409);
  assert.equal(amy.body.activeRunId, alice.body.id);
  await api(t).cancel(alice.body.id, 'alice');
  const amyAgain = await api(t).create('amy', body, 'key-shared');
  assert.equal(amyAgain.status, 201, 'the refused request did not consume the key');
  assert.notEqual(amyAgain.body.id, alice.body.id);
  assert.equal(amyAgain.body.requestedBy, 'amy');
});

test('a refused request does not burn its key', async () => {
  const bad = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'x', to: 'no-such-migration' }, 'key-after-422'));
  assertProblem(bad, 422);
  const good = await api(t).create('alice', { environment: 'staging', description: 'x' }, 'key-after-422');
  assert.equal(good.status, 201, good.text);
});

test('50 concurrent identical requests with one key make exactly one run; all answer with its id', async () => {
  const before = await counts(t);
  const body = { environment: 'production', description: 'thundering herd' };
  const responses = await Promise.all(Array.from({ length: 50 }, () => api(t).create('alice', body, 'key-herd')));
  const statuses = responses.map((r) => r.status);
  assert.ok(statuses.every((s) => s === 200 || s === 201), `statuses: ${statuses.join(',')}\n${responses.find((r) => r.status >= 300)?.text}`);
  assert.equal(statuses.filter((s) => s === 201).length, 1, 'exactly one request created the run');
  const ids = new Set(responses.map((r) => r.body.id));
  assert.equal(ids.size, 1);
  const id = [...ids][0] as string;
  for (const r of responses) assert.equal(r.headers.location, `/v1/runs/${id}`);
  await t.settle();
  const after = await counts(t);
  assert.equal(after.runs, before.runs + 1);
  assert.equal(after.idempotency_keys, before.idempotency_keys + 1);
  assert.equal(await createdEvents(id), 1);
  const rows = await t.control.query("SELECT count(*)::int AS n FROM runs WHERE description = 'thundering herd'");
  assert.equal(rows.rows[0].n, 1);
  assert.equal((await api(t).get(id)).body.status, 'awaiting_approval');
});

test('concurrent requests with different keys still make only one active run', async () => {
  const before = await runCount();
  const responses = await Promise.all(
    Array.from({ length: 10 }, (_, i) => api(t).create('alice', { environment: 'staging', description: `herd ${i}` }, `key-different-${i}`)),
  );
  const created = responses.filter((r) => r.status === 201);
  assert.equal(created.length, 1, responses.map((r) => r.status).join(','));
  for (const r of responses.filter((r) => r.status !== 201)) {
    assertProblem(r, 409);
    assert.equal(r.body.activeRunId, created[0]!.body.id);
  }
  await t.settle();
  assert.equal(await runCount(), before + 1);
  const keys = await t.control.query("SELECT count(*)::int AS n FROM idempotency_keys WHERE key LIKE 'key-different-%'");
  assert.equal(keys.rows[0].n, 1, 'refused requests leave no key behind');
});

test('malformed Idempotency-Key headers are 400 and write nothing', async () => {
  for (const key of ['x'.repeat(201), 'has space', 'tab\tinside', 'ümlaut']) {
    const res = await assertNothingWritten(t, () =>
      t.http().post('/v1/runs').set('authorization', `Bearer test-token-alice-0123456789abcdef`).set('idempotency-key', key)
        .send({ environment: 'staging', description: 'bad key' }));
    assertProblem(res, 400);
  }
});
