// A target whose URL points nowhere (and one with no URL at all): run creation
// is refused without leaking the URL or its password, anywhere, including the
// logs, and GET /v1/environments says the target is unreachable.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import { api, assertNothingWritten, assertProblem, createAwaiting } from './helpers.js';

const PASSWORD = 'S3cretPassw0rd';
const NOWHERE = `postgres://sfuser:${PASSWORD}@127.0.0.1:1/nowhere`;
const SECRETS = [PASSWORD, NOWHERE, 'sfuser', '127.0.0.1:1', '/nowhere', 'postgres://'];

let t: TestApp;
const logLines: string[] = [];
before(async () => {
  t = await startTestApp({
    label: 'unreachable',
    env: { STAGING_DATABASE_URL: NOWHERE },
    logStream: { write: (line: string) => void logLines.push(line) },
  });
});
after(() => t.close());

function assertClean(text: string, what: string): void {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${what} contains "${secret}": ${text}`);
}

test('creating a run on an unreachable target is 503 problem+json naming neither URL nor password', async () => {
  const res = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'unreachable' }, 'unreachable-1'));
  assertProblem(res, 503, /Cannot connect to the staging database/);
  assert.match(res.body.detail, /connection refused/);
  assertClean(res.text, 'the 503 body');
  assertClean(JSON.stringify(res.headers), 'the 503 headers');
  // Retrying gives the same answer and still writes nothing (the key was not consumed).
  const again = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'unreachable' }, 'unreachable-1'));
  assertProblem(again, 503);
});

test('GET /v1/environments reports the target unreachable with an error that holds no secret', async () => {
  const res = await api(t).environments();
  assert.equal(res.status, 200, res.text);
  assertClean(res.text, 'GET /v1/environments');
  const staging = res.body.find((e: { name: string }) => e.name === 'staging');
  assert.equal(staging.configured, true);
  assert.equal(staging.reachable, false);
  assert.equal(typeof staging.error, 'string');
  assert.match(staging.error, /Cannot connect to the staging database: connection refused/);
  assert.deepEqual(staging.applied, []);
  assert.deepEqual(staging.pending, []);
  assert.equal(staging.databaseUrlEnv, 'STAGING_DATABASE_URL');
  const production = res.body.find((e: { name: string }) => e.name === 'production');
  assert.equal(production.reachable, true);
  assert.equal(production.error, null);
  assert.equal(production.pending.length, 8);
});

test('the other environment keeps working while one target is down', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'production still fine' });
  assert.equal(run.status, 'awaiting_approval');
  assertClean(JSON.stringify(await api(t).get(run.id).then((r) => r.body)), 'the run');
  assertClean((await api(t).report(run.id)).text, 'the report');
  assertClean((await api(t).list()).text, 'the run list');
});

test('no log line carries the URL or the password', async () => {
  assert.ok(logLines.length > 0, 'the app logged something');
  assertClean(logLines.join('\n'), 'the logs');
});
