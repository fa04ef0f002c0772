// Approval rules: the caller decides only in a role it holds, never on its own
// run, once per run; production needs engineering + sre from two subjects;
// staging ("any") needs one; reject is terminal; every decision records the digest.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  api, assertCompleteTrail, assertNothingWritten, assertProblem, createAwaiting, eventsOf, freeEnvironments, ISO,
} from './helpers.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({ label: 'approvals' });
});
afterEach(() => freeEnvironments(t));
after(() => t.close());

const approvalRows = async (runId: string) =>
  (await t.control.query('SELECT subject, role, decision, digest FROM run_approvals WHERE run_id = $1 ORDER BY id', [runId])).rows;

test('production is approved only by one engineering and one sre approval from two subjects', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'two approvals' });
  assert.deepEqual(run.requiredApprovals, ['engineering', 'sre']);

  const eng = await api(t).decide(run.id, 'bob', 'engineering', 'approve', 'schema reviewed');
  assert.equal(eng.status, 201, eng.text);
  assert.equal(eng.body.id, run.id);
  assert.equal(eng.body.status, 'awaiting_approval', 'one approval is not enough for production');
  assert.equal(eng.body.approvals.length, 1);
  const a = eng.body.approvals[0];
  assert.equal(a.subject, 'bob');
  assert.equal(a.role, 'engineering');
  assert.equal(a.decision, 'approve');
  assert.equal(a.comment, 'schema reviewed');
  assert.equal(a.digest, run.digest);
  assert.equal(a.current, true);
  assert.match(a.at, ISO);

  // A second engineering approval fills no slot.
  const ben = await assertNothingWritten(t, () => api(t).decide(run.id, 'ben', 'engineering'));
  assertProblem(ben, 409, /no further engineering approval.*sre/);

  const sre = await api(t).decide(run.id, 'carol', 'sre');
  assert.equal(sre.status, 201, sre.text);
  assert.equal(sre.body.status, 'approved');
  assert.deepEqual(sre.body.approvals.map((x: { subject: string; role: string }) => [x.subject, x.role]), [['bob', 'engineering'], ['carol', 'sre']]);
  for (const x of sre.body.approvals) {
    assert.equal(x.digest, sre.body.digest);
    assert.equal(x.current, true);
  }
  assert.equal(sre.body.approvals[1].comment, '');
  // The repo's production applies only on an operator's confirmation: approved, not scheduled.
  assert.equal(sre.body.scheduledFor, null);
  const awaiting = (await eventsOf(t, run.id)).slice(-2).map((e) => [e.type, e.actor, e.from, e.to]);
  assert.deepEqual(awaiting, [['run.approved', 'carol', 'awaiting_approval', 'approved'], ['apply.awaiting_confirmation', 'scheduler', null, null]]);

  // Approved: no more decisions.
  const late = await assertNothingWritten(t, () => api(t).decide(run.id, 'cora', 'sre'));
  assertProblem(late, 409, /is approved; decisions are only taken while it is awaiting_approval/);
  assert.equal(late.body.currentStatus, 'approved');
  const lateReject = await assertNothingWritten(t, () => api(t).decide(run.id, 'ben', 'engineering', 'reject'));
  assertProblem(lateReject, 409, /is approved/);

  assert.deepEqual((await approvalRows(run.id)).map((r) => [r.subject, r.role, r.decision, r.digest]), [
    ['bob', 'engineering', 'approve', run.digest],
    ['carol', 'sre', 'approve', run.digest],
  ]);
});

test('sre first, then engineering, also satisfies production', async () => {
  const run = await createAwaiting(t, 'amy', { environment: 'production', description: 'sre first' });
  assert.equal((await api(t).decide(run.id, 'cora', 'sre')).body.status, 'awaiting_approval');
  const second = await assertNothingWritten(t, () => api(t).decide(run.id, 'carol', 'sre'));
  assertProblem(second, 409, /no further sre approval/);
  assert.equal((await api(t).decide(run.id, 'ben', 'engineering')).body.status, 'approved');
});

test('the requester can never decide on its own run, even holding the role', async () => {
  // rita is requester AND engineering.
  const run = await createAwaiting(t, 'rita', { environment: 'production', description: 'self approval' });
  const approve = await assertNothingWritten(t, () => api(t).decide(run.id, 'rita', 'engineering'));
  assertProblem(approve, 403, /rita requested run .* and cannot approve it/);
  const reject = await assertNothingWritten(t, () => api(t).decide(run.id, 'rita', 'engineering', 'reject'));
  assertProblem(reject, 403, /cannot reject it/);
  const asSre = await assertNothingWritten(t, () => api(t).decide(run.id, 'rita', 'sre'));
  assertProblem(asSre, 403);
  assert.equal((await api(t).get(run.id)).body.status, 'awaiting_approval');
  assert.deepEqual((await api(t).get(run.id)).body.approvals, []);

  // An admin that requested a run cannot approve it either.
  await api(t).cancel(run.id, 'rita');
  const own = await createAwaiting(t, 'root', { environment: 'production', description: 'admin self approval' });
  assertProblem(await assertNothingWritten(t, () => api(t).decide(own.id, 'root', 'engineering')), 403);
});

test('rita (requester + engineering) may approve somebody else\'s run', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'rita approves' });
  const res = await api(t).decide(run.id, 'rita', 'engineering');
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.status, 'scheduled');
});

test('a caller decides only in a role it holds', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'role check' });
  assertProblem(await assertNothingWritten(t, () => api(t).decide(run.id, 'bob', 'sre')), 403, /does not hold the sre role/);
  assertProblem(await assertNothingWritten(t, () => api(t).decide(run.id, 'carol', 'engineering')), 403, /does not hold the engineering role/);
  assertProblem(await assertNothingWritten(t, () => api(t).decide(run.id, 'rita', 'sre')), 403);
  // admin holds every role.
  const root = await api(t).decide(run.id, 'root', 'sre');
  assert.equal(root.status, 201, root.text);
  assert.equal(root.body.status, 'awaiting_approval');
});

test('one subject cannot approve twice nor fill two roles (eve is engineering and sre)', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'eve twice' });
  const first = await api(t).decide(run.id, 'eve', 'engineering');
  assert.equal(first.status, 201, first.text);
  assert.equal(first.body.status, 'awaiting_approval');

  const asSre = await assertNothingWritten(t, () => api(t).decide(run.id, 'eve', 'sre'));
  assertProblem(asSre, 409, /eve already decided on this run \(approve as engineering\)/);
  const again = await assertNothingWritten(t, () => api(t).decide(run.id, 'eve', 'engineering'));
  assertProblem(again, 409, /already decided/);
  const reject = await assertNothingWritten(t, () => api(t).decide(run.id, 'eve', 'sre', 'reject'));
  assertProblem(reject, 409, /already decided/);
  assert.equal((await api(t).get(run.id)).body.status, 'awaiting_approval');

  // The same holds for an admin.
  assert.equal((await api(t).decide(run.id, 'root', 'sre')).body.status, 'approved');
  await api(t).cancel(run.id, 'alice');
  const run2 = await createAwaiting(t, 'amy', { environment: 'production', description: 'root twice' });
  assert.equal((await api(t).decide(run2.id, 'root', 'engineering')).status, 201);
  assertProblem(await assertNothingWritten(t, () => api(t).decide(run2.id, 'root', 'sre')), 409, /already decided/);
});

test('staging ("any") is approved by a single engineering or sre approval', async () => {
  const a = await createAwaiting(t, 'alice', { environment: 'staging', description: 'any: sre' });
  assert.deepEqual(a.requiredApprovals, ['any']);
  const bySre = await api(t).decide(a.id, 'carol', 'sre');
  assert.equal(bySre.status, 201, bySre.text);
  assert.equal(bySre.body.status, 'scheduled');
  assertProblem(await assertNothingWritten(t, () => api(t).decide(a.id, 'bob', 'engineering')), 409, /is scheduled/);
  await api(t).cancel(a.id, 'alice');

  const b = await createAwaiting(t, 'alice', { environment: 'staging', description: 'any: engineering' });
  const byEng = await api(t).decide(b.id, 'ben', 'engineering');
  assert.equal(byEng.body.status, 'scheduled');
  const events = await eventsOf(t, b.id);
  assert.deepEqual(events.slice(-3).map((e) => [e.type, e.actor, e.from, e.to]), [
    ['approval.approved', 'ben', null, null],
    ['run.approved', 'ben', 'awaiting_approval', 'approved'],
    // Approved runs are scheduled in the same transaction (no windows: due at once).
    ['run.scheduled', 'scheduler', 'approved', 'scheduled'],
  ]);
});

test('reject makes the run rejected (terminal) and frees the environment', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'to be rejected' });
  assert.equal((await api(t).decide(run.id, 'bob', 'engineering')).status, 201);
  // A rejection needs no open slot: an sre rejects after engineering approved.
  const res = await api(t).decide(run.id, 'carol', 'sre', 'reject', 'locks hero_snapshots for too long');
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.status, 'rejected');
  const rejection = res.body.approvals.find((a: { subject: string }) => a.subject === 'carol');
  assert.equal(rejection.decision, 'reject');
  assert.equal(rejection.comment, 'locks hero_snapshots for too long');
  assert.equal(rejection.digest, run.digest);

  const events = await eventsOf(t, run.id);
  assert.deepEqual(events.slice(-2).map((e) => [e.type, e.actor, e.from, e.to]), [
    ['approval.rejected', 'carol', null, null],
    ['run.rejected', 'carol', 'awaiting_approval', 'rejected'],
  ]);
  assert.deepEqual(events[events.length - 1]!.details, { role: 'sre', comment: 'locks hero_snapshots for too long' });
  await assertCompleteTrail(t, res.body);

  for (const [who, role, decision] of [['cora', 'sre', 'approve'], ['ben', 'engineering', 'approve'], ['ben', 'engineering', 'reject']] as const) {
    const late = await assertNothingWritten(t, () => api(t).decide(run.id, who, role, decision));
    assertProblem(late, 409, /is rejected/);
  }
  const next = await api(t).create('amy', { environment: 'production', description: 'after rejection' });
  assert.equal(next.status, 201, next.text);
});

test('concurrent decisions: two engineers race for one slot, eve races herself, engineering + sre both land', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'race' });
  const [bob, ben] = await Promise.all([api(t).decide(run.id, 'bob', 'engineering'), api(t).decide(run.id, 'ben', 'engineering')]);
  assert.deepEqual([bob.status, ben.status].sort(), [201, 409]);
  assertProblem(bob.status === 409 ? bob : ben, 409);
  assert.equal((await approvalRows(run.id)).length, 1);
  await api(t).cancel(run.id, 'alice');

  const run2 = await createAwaiting(t, 'alice', { environment: 'production', description: 'eve races herself' });
  const eve = await Promise.all([api(t).decide(run2.id, 'eve', 'engineering'), api(t).decide(run2.id, 'eve', 'sre')]);
  assert.deepEqual(eve.map((r) => r.status).sort(), [201, 409]);
  assert.equal((await approvalRows(run2.id)).length, 1);
  assert.equal((await api(t).get(run2.id)).body.status, 'awaiting_approval');
  await api(t).cancel(run2.id, 'alice');

  const run3 = await createAwaiting(t, 'alice', { environment: 'production', description: 'both land' });
  const both = await Promise.all([api(t).decide(run3.id, 'ben', 'engineering'), api(t).decide(run3.id, 'cora', 'sre')]);
  assert.deepEqual(both.map((r) => r.status), [201, 201]);
  const final = (await api(t).get(run3.id)).body;
  assert.equal(final.status, 'approved');
  const approvedEvents = (await eventsOf(t, run3.id)).filter((e) => e.type === 'run.approved');
  assert.equal(approvedEvents.length, 1, 'exactly one approved transition');
  await assertCompleteTrail(t, final);
});

test('decisions on unknown or malformed runs', async () => {
  const unknown = await assertNothingWritten(t, () => api(t).decide('00000000-0000-4000-8000-000000000000', 'bob', 'engineering'));
  assertProblem(unknown, 404);
  const malformed = await assertNothingWritten(t, () => api(t).decide('nope', 'bob', 'engineering'));
  assertProblem(malformed, 400);
});
