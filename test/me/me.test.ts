// GET /v1/me and /v1/me/waiting. The capabilities are checked against the
// routes themselves: a caller the server would refuse for its roles gets 403,
// one it admits gets past auth to validation (400), so nothing is written.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bearer, startTestApp, SUBJECTS, type Subject, type TestApp } from '../support/app.js';
import { assertProblem, createAwaiting } from '../runs/helpers.js';

let t: TestApp;
const NO_RUN = '00000000-0000-4000-8000-000000000000';

before(async () => {
  t = await startTestApp({ label: 'me' });
});
after(() => t.close());

const me = async (who: Subject) => {
  const res = await t.http().get('/v1/me').set('authorization', bearer(who));
  assert.equal(res.status, 200, res.text);
  return res.body as { subject: string; roles: string[]; can: Record<string, boolean | string[]> };
};
const waiting = async (who: Subject) => {
  const res = await t.http().get('/v1/me/waiting').set('authorization', bearer(who));
  assert.equal(res.status, 200, res.text);
  return res.body as { approvals: Array<{ run: { id: string }; asRoles: string[] }>; rollbacks: Array<{ run: { id: string }; request: { id: string; requestedBy: string } }> };
};

describe('GET /v1/me', () => {
  test('401 problem without a token, or with a wrong one', async () => {
    assertProblem(await t.http().get('/v1/me'), 401);
    assertProblem(await t.http().get('/v1/me').set('authorization', 'Bearer nope'), 401);
  });

  test('subject and roles of the token; the token itself is not in the answer', async () => {
    for (const who of Object.keys(SUBJECTS) as Subject[]) {
      const body = await me(who);
      assert.equal(body.subject, who);
      assert.deepEqual(body.roles, [...SUBJECTS[who]]);
      assert.ok(!JSON.stringify(body).includes('test-token-'));
    }
  });

  test('each capability agrees with what the routes admit', async () => {
    const probes: Array<[string, (who: Subject) => Promise<number>]> = [
      ['createRun', async (who) => (await t.http().post('/v1/runs').set('authorization', bearer(who)).send({})).status],
      ['apply', async (who) => (await t.http().post(`/v1/runs/${NO_RUN}/apply`).set('authorization', bearer(who)).send({})).status],
      ['requestRollback', async (who) => (await t.http().post(`/v1/runs/${NO_RUN}/rollback`).set('authorization', bearer(who)).send({})).status],
      ['approveRollback', async (who) => (await t.http().post(`/v1/runs/${NO_RUN}/rollback/approvals`).set('authorization', bearer(who)).send({})).status],
      ['controlEtl', async (who) => (await t.http().post('/v1/etl/pause').set('authorization', bearer(who)).send({})).status],
      ['controlBackfills', async (who) => (await t.http().post(`/v1/backfills/${NO_RUN}/pause`).set('authorization', bearer(who)).send({ bogus: 1 })).status],
      ['acknowledgeFindings', async (who) => (await t.http().post(`/v1/runs/${NO_RUN}/acknowledgements`).set('authorization', bearer(who)).send({})).status],
      ['approveAs', async (who) => (await t.http().post(`/v1/runs/${NO_RUN}/approvals`).set('authorization', bearer(who)).send({})).status],
    ];
    for (const who of Object.keys(SUBJECTS) as Subject[]) {
      const { can } = await me(who);
      for (const [capability, probe] of probes) {
        const allowed = Array.isArray(can[capability]) ? (can[capability] as string[]).length > 0 : can[capability] === true;
        const status = await probe(who);
        assert.equal(status === 403, !allowed, `${who} ${capability}=${JSON.stringify(can[capability])} but the route answered ${status}`);
        if (allowed) assert.equal(status, 400, `${who} ${capability}: past auth, refused by validation`);
      }
    }
    assert.deepEqual((await me('eve')).can.approveAs, ['engineering', 'sre']);
    assert.equal((await me('olga')).can.applyOutsideWindow, false, 'outside a window needs sre as well');
    assert.equal((await me('root')).can.applyOutsideWindow, true);
  });
});

describe('GET /v1/me/waiting', () => {
  test('a run awaiting approval waits for approvers other than its requester, until it is decided', async () => {
    const run = await createAwaiting(t, 'rita', { environment: 'staging', description: 'waiting list' });
    const ids = async (who: Subject) => (await waiting(who)).approvals.map((a) => `${a.run.id}:${a.asRoles.join('+')}`);
    assert.deepEqual(await ids('bob'), [`${run.id}:engineering`]);
    assert.deepEqual(await ids('eve'), [`${run.id}:engineering+sre`]);
    assert.deepEqual(await ids('carol'), [`${run.id}:sre`]);
    assert.deepEqual(await ids('rita'), [], 'never the requester, although she holds engineering');
    assert.deepEqual(await ids('alice'), [], 'no approver role');
    assert.deepEqual(await waiting('olga'), { approvals: [], rollbacks: [] });

    const rejected = await t.http().post(`/v1/runs/${run.id}/approvals`).set('authorization', bearer('bob')).send({ role: 'engineering', decision: 'reject', comment: 'no' });
    assert.equal(rejected.status, 201, rejected.text);
    assert.deepEqual(await ids('eve'), [], 'a decided run waits for nobody');
  });

  test('an open rollback request waits for the sres other than the one who asked', async () => {
    const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'rollback waiting' });
    // The request row as the rollback service writes it (the full flow runs in test/console/flow.test.ts).
    const inserted = await t.control.query(`INSERT INTO rollback_requests (run_id, mode, status, requested_by, reason) VALUES ($1, 'down', 'awaiting_approval', 'eve', 'test') RETURNING id`, [run.id]);
    const requestId = inserted.rows[0].id as string;
    assert.deepEqual((await waiting('carol')).rollbacks.map((r) => [r.run.id, r.request.id, r.request.requestedBy]), [[run.id, requestId, 'eve']]);
    assert.deepEqual((await waiting('eve')).rollbacks, [], 'not the sre who asked');
    assert.deepEqual((await waiting('olga')).rollbacks, [], 'an operator does not approve rollbacks');
    await t.control.query(`UPDATE rollback_requests SET status = 'rejected' WHERE id = $1`, [requestId]);
    assert.deepEqual((await waiting('carol')).rollbacks, []);
    await t.http().post(`/v1/runs/${run.id}/cancel`).set('authorization', bearer('alice')).send({});
  });
});
