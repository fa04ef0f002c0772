// Promotion (`requires: {environment: 'staging'}`): a production run can only
// be approved once a staging run with the same digest has succeeded; the
// refusal is a 409 problem naming what is missing, and the report links the
// staging run it was promoted from.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { applyMigrations, FIXTURE_BASE, FIXTURES, writeMigrations } from '../support/migrations.js';
import { assertNothingWritten, assertProblem } from '../runs/helpers.js';
import { policyApi, startPolicyApp, type PolicyApp } from './helpers.js';

let app: PolicyApp;
before(async () => {
  app = await startPolicyApp({ label: 'promotion', sharedDir: true, production: `requires: { environment: 'staging' }` });
});
after(() => app.close());

test('production approvals are refused until staging succeeded with the same digest, then allowed; the report links the staging run', async () => {
  const { t } = app;
  const api = policyApi(t);
  await writeMigrations(app.stagingDir, FIXTURE_BASE);
  await applyMigrations(t.targets.staging.url, app.stagingDir, 2);
  await applyMigrations(t.targets.production.url, app.stagingDir, 2);
  await writeMigrations(app.stagingDir, { ...FIXTURE_BASE, '2000_add-note': FIXTURES.addNote });

  const prod = await api.created('production', 'promote add-note');
  const digest = (await api.run(prod)).digest as string;
  const refused = await assertNothingWritten(t, () => api.call('post', `/v1/runs/${prod}/approvals`, 'bob', { role: 'engineering', decision: 'approve' }));
  assertProblem(refused, 409, /approves only content that has already succeeded on staging/);
  assert.equal(refused.body.code, 'promotion-required');
  assert.deepEqual(refused.body.missing, { environment: 'staging', digest, status: 'succeeded' });
  assert.match(refused.body.detail, /No run of staging carries this digest/);

  // A staging run of the same digest that did not succeed does not count, and is named.
  const cancelled = await api.created('staging', 'cancelled attempt');
  assert.equal((await api.call('post', `/v1/runs/${cancelled}/cancel`, 'alice', { reason: 'not now' })).status, 200);
  const still = await api.call('post', `/v1/runs/${prod}/approvals`, 'carol', { role: 'sre', decision: 'approve' });
  assertProblem(still, 409);
  assert.deepEqual(still.body.candidates, [{ id: cancelled, status: 'cancelled' }]);
  assert.ok(still.body.detail.includes(`${cancelled} (cancelled)`));
  assert.equal((await api.run(prod)).approvals.length, 0);

  // Staging succeeds with that digest.
  const staging = await api.created('staging', 'add-note on staging');
  assert.equal((await api.run(staging)).digest, digest);
  await api.approve(staging, 'staging');
  assert.equal((await api.call('post', `/v1/runs/${staging}/apply`, 'olga', { confirm: 'staging' })).status, 202);
  await t.settle();
  assert.equal((await api.run(staging)).status, 'succeeded');

  const approved = await api.approve(prod, 'production');
  assert.equal(approved.status, 'approved');
  const evidence = (await api.events(prod)).find((e) => e.type === 'promotion.verified')!;
  assert.equal(evidence.details.environment, 'staging');
  assert.equal(evidence.details.runId, staging);
  assert.equal(evidence.details.digest, digest);
  assert.match(String(evidence.details.succeededAt), /^\d{4}-/);

  // Applied (outside the window, by a co-signed override), its report links the staging run.
  assert.equal((await api.call('post', `/v1/runs/${prod}/apply`, 'olga', { confirm: 'production', overrideWindow: true, reason: 'promotion test' })).status, 202);
  assert.equal((await api.call('post', `/v1/runs/${prod}/overrides/approvals`, 'cora', { decision: 'approve' })).status, 201);
  await t.settle();
  assert.equal((await api.run(prod)).status, 'succeeded');
  const report = await api.call('get', `/v1/runs/${prod}/report`, 'vic');
  assert.equal(report.status, 200, report.text);
  assert.deepEqual(report.body.promotion, { environment: 'staging', runId: staging, digest, succeededAt: evidence.details.succeededAt, link: `/v1/runs/${staging}` });
  const md = await api.call('get', `/v1/runs/${prod}/report?format=md`, 'vic');
  assert.ok(md.text.includes(`Promoted from staging run [${staging}](/v1/runs/${staging})`), md.text);
  // The staging run itself needs no promotion.
  assert.equal((await api.call('get', `/v1/runs/${staging}/report`, 'vic')).body.promotion, null);
});
