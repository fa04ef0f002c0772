// Co-signed overrides: applying production outside its window needs an
// operator's request with a reason and the approval of a different sre; a
// production down or restore outside the window likewise needs the co-sign,
// or waits for the next window (and re-checks its plan then).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { applyMigrations, FIXTURE_BASE, FIXTURES, writeMigrations } from '../support/migrations.js';
import { assertNothingWritten, assertProblem } from '../runs/helpers.js';
import { MIN, nextAtHour, policyApi, resetTargets, startPolicyApp, WINDOW_HOUR, type PolicyApp } from './helpers.js';

let app: PolicyApp;
before(async () => {
  app = await startPolicyApp({ label: 'overrides' });
});
after(() => app.close());
afterEach(() => resetTargets(app.t));

const columns = async () => (await app.t.targets.production.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts' ORDER BY ordinal_position`)).rows.map((r) => r.column_name);

async function approvedProductionRun(): Promise<string> {
  await writeMigrations(app.productionDir, FIXTURE_BASE);
  await applyMigrations(app.t.targets.production.url, app.productionDir, 2);
  await writeMigrations(app.productionDir, { ...FIXTURE_BASE, '2000_add-note': FIXTURES.addNote });
  const api = policyApi(app.t);
  const id = await api.created('production');
  assert.equal((await api.approve(id, 'production')).status, 'approved');
  return id;
}

/** Applied outside the window: olga asks, cora co-signs. */
async function succeededProductionRun(): Promise<string> {
  const api = policyApi(app.t);
  const id = await approvedProductionRun();
  assert.equal((await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production', overrideWindow: true, reason: 'set up' })).status, 202);
  assert.equal((await api.call('post', `/v1/runs/${id}/overrides/approvals`, 'cora', { decision: 'approve' })).status, 201);
  await app.t.settle();
  assert.equal((await api.run(id)).status, 'succeeded');
  return id;
}

describe('window override', () => {
  test('the operator asks with a reason; nothing applies until a different sre approves; the requester (even an admin) cannot approve it', async () => {
    const { t } = app;
    const api = policyApi(t);
    const id = await approvedProductionRun();
    // The old single-person override (an admin with every role) only asks now.
    const asked = await api.call('post', `/v1/runs/${id}/apply`, 'root', { confirm: 'production', overrideWindow: true, reason: 'INC-12 hotfix' });
    assert.equal(asked.status, 202, asked.text);
    assert.equal(asked.body.status, 'approved');
    await t.settle();
    assert.equal((await api.run(id)).status, 'approved');
    assert.deepEqual(await columns(), ['id', 'email'], 'nothing applied on the request alone');
    const list = (await api.call('get', `/v1/runs/${id}/overrides`, 'vic')).body;
    assert.equal(list.length, 1);
    assert.deepEqual([list[0].status, list[0].requestedBy, list[0].reason], ['awaiting_approval', 'root', 'INC-12 hotfix']);

    assertProblem(await assertNothingWritten(t, () => api.call('post', `/v1/runs/${id}/overrides/approvals`, 'root', { decision: 'approve' })), 403, /root asked for this window override; another sre/);
    assert.equal((await api.call('post', `/v1/runs/${id}/overrides/approvals`, 'olga', { decision: 'approve' })).status, 403, 'an operator is not an sre');
    assertProblem(await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production', overrideWindow: true, reason: 'me too' }), 409, /already has a window override awaiting approval/);

    const ok = await api.call('post', `/v1/runs/${id}/overrides/approvals`, 'carol', { decision: 'approve', comment: 'INC-12 confirmed' });
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual([ok.body.status, ok.body.decidedBy], ['approved', 'carol']);
    await t.settle();
    assert.equal((await api.run(id)).status, 'succeeded');
    assert.deepEqual(await columns(), ['id', 'email', 'note']);
    const events = await api.events(id);
    const pick = (type: string) => events.find((e) => e.type === type)!;
    assert.deepEqual([pick('override.requested').actor, pick('override.requested').details.reason], ['root', 'INC-12 hotfix']);
    assert.equal(pick('apply.confirmed').actor, 'root');
    assert.equal(pick('override.approved').actor, 'carol');
    assert.deepEqual([pick('apply.window_overridden').actor, pick('apply.window_overridden').details.requestedBy, pick('apply.window_overridden').details.approvedBy], ['carol', 'root', 'carol']);
    assert.equal(pick('apply.started').details.overrideWindow, true);
    const types = events.map((e) => e.type);
    assert.ok(types.indexOf('override.requested') < types.indexOf('override.approved'));
    assert.ok(types.indexOf('override.approved') < types.indexOf('apply.started'));
    // Used: a second approval has nothing to approve.
    assertProblem(await api.call('post', `/v1/runs/${id}/overrides/approvals`, 'cora', { decision: 'approve' }), 409, /no window override awaiting approval/);
  });

  test('a rejected override applies nothing; an override of content that changed expires', async () => {
    const { t } = app;
    const api = policyApi(t);
    const id = await approvedProductionRun();
    await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production', overrideWindow: true, reason: 'maybe' });
    const rejected = await api.call('post', `/v1/runs/${id}/overrides/approvals`, 'carol', { decision: 'reject', comment: 'wait for the window' });
    assert.equal(rejected.status, 201, rejected.text);
    assert.equal(rejected.body.status, 'rejected');
    assert.equal((await api.run(id)).status, 'approved');
    assert.ok((await api.events(id)).some((e) => e.type === 'override.rejected' && e.actor === 'carol'));

    await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production', overrideWindow: true, reason: 'again' });
    await t.control.query(`UPDATE window_overrides SET digest = $2 WHERE run_id = $1 AND status = 'awaiting_approval'`, [id, 'f'.repeat(64)]);
    const stale = await api.call('post', `/v1/runs/${id}/overrides/approvals`, 'carol', { decision: 'approve' });
    assertProblem(stale, 409, /no longer applies: the run carries other content/);
    await t.settle();
    assert.equal((await api.run(id)).status, 'approved');
    assert.deepEqual(await columns(), ['id', 'email']);
  });
});

describe('production rollback outside the window', () => {
  test('without an override it waits for the next window; a plan that changed meanwhile needs a new approval; then the tick runs it', async () => {
    const { t } = app;
    const api = policyApi(t);
    const id = await succeededProductionRun();
    const asked = await api.call('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'production', reason: 'errors after release' });
    assert.equal(asked.status, 202, asked.text);
    assert.equal(asked.body.plan.window.open, false);
    const digest = (await api.plan(id, 'down')).digest;
    const approved = await api.call('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: digest });
    assert.equal(approved.status, 201, approved.text);
    const windowStart = nextAtHour(WINDOW_HOUR);
    assert.equal(approved.body.status, 'scheduled');
    assert.equal(approved.body.scheduledFor, windowStart.toISOString());
    assert.equal(approved.body.approvedPlanDigest, digest);
    await t.settle();
    assert.equal((await api.run(id)).status, 'succeeded', 'nothing runs before the window');
    assert.deepEqual(await columns(), ['id', 'email', 'note']);
    assert.deepEqual((await api.tick(new Date(windowStart.getTime() - MIN))).rollbacks, []);

    // Before the window, the data at risk grows tenfold: the approval no longer stands.
    await t.targets.production.query(`INSERT INTO accounts SELECT g, 'n' || g || '@x', 'note ' || g FROM generate_series(1000, 1100) g`);
    assert.deepEqual((await api.tick(new Date(windowStart.getTime() + MIN))).rollbacks, []);
    let request = (await api.call('get', `/v1/runs/${id}/rollback`, 'vic')).body[0];
    assert.equal(request.status, 'awaiting_approval');
    const changed = (await api.events(id)).find((e) => e.type === 'rollback.plan_changed')!;
    assert.equal(changed.details.approvedDigest, digest);
    assert.notEqual(changed.details.digest, digest);
    assert.deepEqual(await columns(), ['id', 'email', 'note']);

    const fresh = await api.plan(id, 'down');
    assert.equal(fresh.digest, changed.details.digest);
    assert.equal((await api.call('post', `/v1/runs/${id}/rollback/approvals`, 'cora', { decision: 'approve', planDigest: fresh.digest })).body.status, 'scheduled');
    assert.deepEqual((await api.tick(new Date(windowStart.getTime() + 2 * MIN))).rollbacks, [id]);
    await t.settle();
    assert.equal((await api.run(id)).status, 'rolled_back', JSON.stringify((await api.run(id)).error));
    assert.deepEqual(await columns(), ['id', 'email']);
    request = (await api.call('get', `/v1/runs/${id}/rollback`, 'vic')).body[0];
    assert.deepEqual([request.status, request.decidedBy], ['succeeded', 'cora']);
    const started = (await api.events(id)).find((e) => e.type === 'run.rolling_back')!;
    assert.deepEqual([started.actor, started.details.approvedBy, started.details.planDigest], ['scheduler', 'cora', fresh.digest]);
  });

  test('with overrideWindow the approval of a different sre co-signs it and it runs now; the requester cannot approve', async () => {
    const { t } = app;
    const api = policyApi(t);
    const id = await succeededProductionRun();
    const asked = await api.call('post', `/v1/runs/${id}/rollback`, 'root', { mode: 'restore', confirm: 'production', reason: 'data damaged', overrideWindow: true });
    assert.equal(asked.status, 202, asked.text);
    assert.equal(asked.body.overrideWindow, true);
    const digest = (await api.plan(id, 'restore')).digest;
    assertProblem(await assertNothingWritten(t, () => api.call('post', `/v1/runs/${id}/rollback/approvals`, 'root', { decision: 'approve', planDigest: digest })), 403, /another sre must approve/);
    const ok = await api.call('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: digest });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.body.status, 'running');
    await t.settle();
    assert.equal((await api.run(id)).status, 'restored', JSON.stringify((await api.run(id)).error));
    assert.deepEqual(await columns(), ['id', 'email']);
    const overridden = (await api.events(id)).find((e) => e.type === 'rollback.window_overridden')!;
    assert.deepEqual([overridden.actor, overridden.details.requestedBy, overridden.details.approvedBy, overridden.details.reason], ['carol', 'root', 'carol', 'data damaged']);
  });
});
