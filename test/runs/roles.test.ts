// Who may call what: 401 without a valid token (problem+json + WWW-Authenticate),
// 403 without the role, and the per-run rules (own run vs operator vs admin).
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import type supertest from 'supertest';
import { bearer, SUBJECTS, startTestApp, tokenOf, type Subject, type TestApp } from '../support/app.js';
import { api, assertNothingWritten, assertProblem, createAwaiting, freeEnvironments, type ApiRun } from './helpers.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({ label: 'roles' });
});
afterEach(() => freeEnvironments(t));
after(() => t.close());

interface Endpoint {
  name: string;
  /** Roles the route admits (admin always passes); undefined = any authenticated caller. */
  roles?: string[];
  call(authorization: string | undefined, runId: string): supertest.Test;
}

const withAuth = (req: supertest.Test, authorization: string | undefined) => (authorization === undefined ? req : req.set('authorization', authorization));

const ENDPOINTS: Endpoint[] = [
  { name: 'POST /v1/runs', roles: ['requester'], call: (a) => withAuth(t.http().post('/v1/runs'), a).send({ environment: 'staging', description: 'matrix' }) },
  { name: 'GET /v1/runs', call: (a) => withAuth(t.http().get('/v1/runs'), a) },
  { name: 'GET /v1/runs/:id', call: (a, id) => withAuth(t.http().get(`/v1/runs/${id}`), a) },
  { name: 'GET /v1/runs/:id/preflight', call: (a, id) => withAuth(t.http().get(`/v1/runs/${id}/preflight`), a) },
  { name: 'GET /v1/runs/:id/events', call: (a, id) => withAuth(t.http().get(`/v1/runs/${id}/events`), a) },
  { name: 'POST /v1/runs/:id/preflight', roles: ['requester', 'operator'], call: (a, id) => withAuth(t.http().post(`/v1/runs/${id}/preflight`), a) },
  {
    name: 'POST /v1/runs/:id/approvals', roles: ['engineering', 'sre'],
    call: (a, id) => withAuth(t.http().post(`/v1/runs/${id}/approvals`), a).send({ role: 'engineering', decision: 'approve' }),
  },
  { name: 'POST /v1/runs/:id/cancel', roles: ['requester', 'operator'], call: (a, id) => withAuth(t.http().post(`/v1/runs/${id}/cancel`), a).send({ reason: 'matrix' }) },
  { name: 'GET /v1/environments', call: (a) => withAuth(t.http().get('/v1/environments'), a) },
];

const BAD_AUTH: Array<[string, string | undefined]> = [
  ['no Authorization header', undefined],
  ['an unknown token', 'Bearer not-a-known-token-0123456789'],
  ['a known token with a suffix', `${bearer('root')}x`],
  ['a known token in Basic auth', `Basic ${tokenOf('root')}`],
  ['a bare token without scheme', tokenOf('root')],
  ['an empty bearer', 'Bearer '],
];

test('every endpoint answers 401 problem+json with WWW-Authenticate to callers without a valid token, and writes nothing', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'auth target' });
  await assertNothingWritten(t, async () => {
    for (const endpoint of ENDPOINTS) {
      for (const [label, authorization] of BAD_AUTH) {
        const res = await endpoint.call(authorization, run.id);
        assertProblem(res, 401, /bearer token/);
        assert.match(String(res.headers['www-authenticate']), /^Bearer realm=/, `${endpoint.name} with ${label}`);
        assert.equal(res.body.items, undefined);
      }
    }
  });
  assert.equal((await api(t).get(run.id)).body.status, 'awaiting_approval');
});

test('unknown /v1 routes need a token too: 401 before 404', async () => {
  const anon = await t.http().get('/v1/secret-admin');
  assertProblem(anon, 401);
  const known = await t.http().get('/v1/secret-admin').set('authorization', bearer('vic'));
  assertProblem(known, 404);
});

test('callers without a route\'s role get 403 problem+json naming the roles, and nothing is written', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'role target' });
  await assertNothingWritten(t, async () => {
    for (const endpoint of ENDPOINTS.filter((e) => e.roles)) {
      for (const subject of Object.keys(SUBJECTS) as Subject[]) {
        const roles = SUBJECTS[subject] as readonly string[];
        if (roles.includes('admin') || endpoint.roles!.some((r) => roles.includes(r))) continue;
        const res = await endpoint.call(bearer(subject), run.id);
        assertProblem(res, 403, new RegExp(`needs one of the roles: ${endpoint.roles!.join(', ')}; ${subject} has`));
      }
    }
  });
  assert.equal((await api(t).get(run.id)).body.status, 'awaiting_approval');
});

test('vic (viewer) reads everything but cannot create, approve, cancel or re-run preflight', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'viewer target' });
  const list = await api(t).list({}, 'vic');
  assert.equal(list.status, 200);
  assert.ok(list.body.items.some((r: ApiRun) => r.id === run.id));
  assert.equal((await api(t).get(run.id, 'vic')).body.id, run.id);
  assert.equal((await api(t).report(run.id, 'vic')).body.report.digest, run.digest);
  assert.equal((await api(t).events(run.id, 'vic')).body[0].type, 'run.created');
  const envs = await api(t).environments('vic');
  assert.deepEqual(envs.body.map((e: { name: string }) => e.name).sort(), ['production', 'staging']);

  await assertNothingWritten(t, async () => {
    assertProblem(await api(t).create('vic', { environment: 'staging', description: 'viewer' }), 403);
    assertProblem(await api(t).decide(run.id, 'vic', 'engineering'), 403);
    assertProblem(await api(t).cancel(run.id, 'vic'), 403);
    assertProblem(await api(t).preflight(run.id, 'vic'), 403);
  });
});

test('approvers and operators cannot create runs; requesters cannot approve', async () => {
  for (const who of ['bob', 'carol', 'eve', 'olga'] as const) {
    const res = await assertNothingWritten(t, () => api(t).create(who, { environment: 'staging', description: `by ${who}` }));
    assertProblem(res, 403, /requester/);
  }
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'approver target' });
  for (const who of ['amy', 'alice', 'olga'] as const) {
    assertProblem(await assertNothingWritten(t, () => api(t).decide(run.id, who, 'engineering')), 403);
  }
});

test('another requester can neither cancel nor re-run preflight of someone else\'s run', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'alice owns this' });
  const cancel = await assertNothingWritten(t, () => api(t).cancel(run.id, 'amy'));
  assertProblem(cancel, 403, /Only the requester \(alice\) or an operator/);
  const preflight = await assertNothingWritten(t, () => api(t).preflight(run.id, 'amy'));
  assertProblem(preflight, 403, /Only the requester \(alice\) or an operator/);
  // rita is a requester too (and an engineer): still not hers.
  assertProblem(await assertNothingWritten(t, () => api(t).cancel(run.id, 'rita')), 403);
  assert.equal((await api(t).get(run.id)).body.status, 'awaiting_approval');
});

test('olga (operator) re-runs preflight of and cancels anyone\'s run', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'operator target' });
  const preflight = await api(t).preflight(run.id, 'olga');
  assert.equal(preflight.status, 202, preflight.text);
  await t.settle();
  const cancel = await api(t).cancel(run.id, 'olga', 'operator says no');
  assert.equal(cancel.status, 200, cancel.text);
  assert.equal(cancel.body.status, 'cancelled');
  const events = (await api(t).events(run.id)).body as Array<{ type: string; actor: string }>;
  assert.deepEqual(events.filter((e) => e.actor === 'olga').map((e) => e.type), ['preflight.started', 'run.cancelled']);
});

test('root (admin) can do everything: create, re-run preflight, approve as either role, cancel', async () => {
  const created = await api(t).create('root', { environment: 'staging', description: 'admin run' });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.body.requestedBy, 'root');
  await t.settle();
  assert.equal((await api(t).preflight(created.body.id, 'root')).status, 202);
  await t.settle();
  assert.equal((await api(t).cancel(created.body.id, 'root')).body.status, 'cancelled');

  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'admin approves' });
  assert.equal((await api(t).preflight(run.id, 'root')).status, 202);
  await t.settle();
  const approved = await api(t).decide(run.id, 'root', 'engineering');
  assert.equal(approved.status, 201, approved.text);
  assert.equal((await api(t).decide(run.id, 'cora', 'sre')).body.status, 'approved');
  const cancelled = await api(t).cancel(run.id, 'root');
  assert.equal(cancelled.status, 200, cancelled.text);
  assert.equal(cancelled.body.status, 'cancelled');

  const run2 = await createAwaiting(t, 'alice', { environment: 'staging', description: 'admin approves as sre' });
  assert.equal((await api(t).decide(run2.id, 'root', 'sre')).body.status, 'scheduled');
});

test('requesters cancel and re-run preflight of their own runs', async () => {
  const run = await createAwaiting(t, 'amy', { environment: 'staging', description: 'amy owns this' });
  assert.equal((await api(t).preflight(run.id, 'amy')).status, 202);
  await t.settle();
  assert.equal((await api(t).get(run.id)).body.status, 'awaiting_approval');
  assert.equal((await api(t).cancel(run.id, 'amy')).body.status, 'cancelled');
});
