// The audit trail: append-only in the database itself, one event per status
// change written in the same transaction as the change, and a refused action
// leaves no trace.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  api, assertCompleteTrail, assertNothingWritten, assertProblem, counts, createAwaiting, eventsOf, freeEnvironments,
  markApplied, forgetApplied, REPO_MIGRATIONS,
} from './helpers.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({ label: 'audit' });
});
afterEach(() => freeEnvironments(t));
after(() => t.close());

test('run_events is append-only: UPDATE, DELETE and TRUNCATE fail in the database', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'append only' });
  const before = await eventsOf(t, run.id);
  const total = async () => (await t.control.query('SELECT count(*)::int AS n FROM run_events')).rows[0].n as number;
  const n = await total();
  assert.ok(n >= 3);

  for (const sql of [
    `UPDATE run_events SET actor = 'mallory' WHERE run_id = '${run.id}'`,
    "UPDATE run_events SET details = '{}'::jsonb",
    `DELETE FROM run_events WHERE run_id = '${run.id}'`,
    'DELETE FROM run_events',
    'TRUNCATE run_events',
    'TRUNCATE run_events CASCADE',
  ]) {
    await assert.rejects(t.control.query(sql), (err: Error & { code?: string }) => {
      assert.match(err.message, /run_events is append-only/, sql);
      assert.equal(err.code, '42501');
      return true;
    }, sql);
  }
  assert.equal(await total(), n);
  assert.deepEqual(await eventsOf(t, run.id), before);

  // Inserting stays possible (that is how the service writes).
  await t.control.query("INSERT INTO run_events (run_id, environment, type, actor) VALUES ($1, 'staging', 'test.note', 'tester')", [run.id]);
  assert.equal(await total(), n + 1);
});

test('the event list mirrors the status path, with the actor of every step', async () => {
  // production: created -> preflight_running -> awaiting_approval -> preflight_running (requester re-run)
  //   -> awaiting_approval -> approved (two approvals; waits for a confirmation) -> cancelled (operator)
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'path' });
  await api(t).preflight(run.id, 'alice');
  await t.settle();
  await api(t).decide(run.id, 'eve', 'sre', 'approve', 'ok from sre');
  await api(t).decide(run.id, 'rita', 'engineering');
  const final = await api(t).cancel(run.id, 'olga', 'maintenance');
  assert.equal(final.body.status, 'cancelled');

  const events = await eventsOf(t, run.id);
  assert.deepEqual(events.map((e) => [e.type, e.actor, e.from, e.to]), [
    ['run.created', 'alice', null, 'created'],
    ['preflight.started', 'system', 'created', 'preflight_running'],
    ['preflight.passed', 'system', 'preflight_running', 'awaiting_approval'],
    ['preflight.started', 'alice', 'awaiting_approval', 'preflight_running'],
    ['preflight.passed', 'system', 'preflight_running', 'awaiting_approval'],
    ['approval.approved', 'eve', null, null],
    ['approval.approved', 'rita', null, null],
    ['run.approved', 'rita', 'awaiting_approval', 'approved'],
    // The repo's production is in apply mode confirm: approved until an operator confirms.
    ['apply.awaiting_confirmation', 'scheduler', null, null],
    ['run.cancelled', 'olga', 'approved', 'cancelled'],
  ]);
  for (const e of events) {
    assert.equal(e.runId, run.id);
    assert.equal(e.environment, 'production');
  }
  assert.deepEqual(events[5]!.details, { role: 'sre', comment: 'ok from sre', digest: run.digest });
  assert.deepEqual(events[9]!.details, { reason: 'maintenance' });
  assert.deepEqual(await assertCompleteTrail(t, final.body), ['created', 'preflight_running', 'awaiting_approval', 'preflight_running', 'awaiting_approval', 'approved', 'cancelled']);

  // Each run's events are its own.
  const other = await createAwaiting(t, 'amy', { environment: 'production', description: 'other' });
  assert.ok((await eventsOf(t, other.id)).every((e) => e.runId === other.id));
});

test('a failed preflight is audited as preflight.failed with its findings count', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'fail audit' });
  await markApplied(t.targets.staging, REPO_MIGRATIONS);
  try {
    await api(t).preflight(run.id, 'root');
    await t.settle();
    const failed = (await api(t).get(run.id)).body;
    assert.equal(failed.status, 'preflight_failed');
    const last = (await eventsOf(t, run.id)).at(-1)!;
    assert.deepEqual([last.type, last.actor, last.from, last.to], ['preflight.failed', 'system', 'preflight_running', 'preflight_failed']);
    assert.equal(last.details.findings, 1);
    await assertCompleteTrail(t, failed);
  } finally {
    await forgetApplied(t.targets.staging);
  }
});

test('refused actions (401, 403, 404, 409, 422) leave runs, events, approvals and keys untouched', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'refusals' });
  await api(t).decide(run.id, 'bob', 'engineering');
  const before = await counts(t);
  const refusals: Array<[number, () => Promise<import('supertest').Response>]> = [
    [401, async () => t.http().post(`/v1/runs/${run.id}/cancel`)],
    [403, () => api(t).decide(run.id, 'alice', 'engineering')],
    [403, () => api(t).decide(run.id, 'bob', 'sre')],
    [403, () => api(t).cancel(run.id, 'amy')],
    [403, () => api(t).preflight(run.id, 'amy')],
    [403, () => api(t).create('bob', { environment: 'staging', description: 'x' }, 'audit-403')],
    [404, () => api(t).cancel('00000000-0000-4000-8000-000000000001', 'root')],
    [409, () => api(t).decide(run.id, 'bob', 'engineering')],
    [409, () => api(t).decide(run.id, 'ben', 'engineering')],
    [409, () => api(t).create('amy', { environment: 'production', description: 'second' }, 'audit-409')],
    [422, () => api(t).create('amy', { environment: 'staging', description: 'x', to: 'nope' }, 'audit-422')],
    [422, () => api(t).create('amy', { environment: 'mars', description: 'x' }, 'audit-422b')],
  ];
  for (const [status, call] of refusals) {
    const res = await assertNothingWritten(t, call);
    assertProblem(res, status);
  }
  assert.deepEqual(await counts(t), before);
  const trail = await eventsOf(t, run.id);
  assert.equal(trail.filter((e) => e.type.startsWith('approval.')).length, 1);
});

test('every run in the control database agrees with its last status event', async () => {
  // Make a few more shapes of history first.
  const rejected = await createAwaiting(t, 'alice', { environment: 'staging', description: 'reject me' });
  await api(t).decide(rejected.id, 'carol', 'sre', 'reject');
  const approved = await createAwaiting(t, 'amy', { environment: 'staging', description: 'approve me' });
  await api(t).decide(approved.id, 'ben', 'engineering');
  await t.settle();

  const { rows } = await t.control.query(`
    SELECT r.id, r.status,
      (SELECT e.to_status FROM run_events e WHERE e.run_id = r.id AND e.to_status IS NOT NULL ORDER BY e.id DESC LIMIT 1) AS last_to,
      (SELECT count(*)::int FROM run_events e WHERE e.run_id = r.id AND e.type = 'run.created') AS created_events
    FROM runs r`);
  assert.ok(rows.length >= 5);
  for (const row of rows) {
    assert.equal(row.last_to, row.status, `run ${row.id}`);
    assert.equal(row.created_events, 1, `run ${row.id}`);
    const run = (await api(t).get(row.id)).body;
    await assertCompleteTrail(t, run);
  }
});
