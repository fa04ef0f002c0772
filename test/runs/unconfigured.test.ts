// An environment whose database URL variable is unset: reported as not
// configured, and a run there is refused with 422 naming the variable to set
// (a configuration gap, not a transient 503).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import { api, assertNothingWritten, assertProblem, createAwaiting } from './helpers.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({ label: 'unconfigured', env: { PRODUCTION_DATABASE_URL: '' } });
});
after(() => t.close());

test('GET /v1/environments reports the environment as not configured', async () => {
  const envs = await api(t).environments();
  assert.equal(envs.status, 200);
  const production = envs.body.find((e: { name: string }) => e.name === 'production');
  assert.equal(production.configured, false);
  assert.equal(production.reachable, false);
  assert.match(production.error, /Not configured: set PRODUCTION_DATABASE_URL/);
  assert.deepEqual(production.pending, []);
  const staging = envs.body.find((e: { name: string }) => e.name === 'staging');
  assert.equal(staging.configured, true);
  assert.equal(staging.reachable, true);
});

test('creating a run there is 422 naming the variable, and writes nothing', async () => {
  const res = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'production', description: 'no url' }, 'unconfigured-1'));
  assertProblem(res, 422, /Environment "production" has no database: set PRODUCTION_DATABASE_URL/);
});

test('the configured environment is unaffected', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'staging works' });
  assert.equal((await api(t).decide(run.id, 'bob', 'engineering')).body.status, 'scheduled');
});
