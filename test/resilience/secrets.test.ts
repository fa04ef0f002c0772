import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bearer, startTestApp, type TestApp } from '../support/app.js';

// Target URLs whose passwords have special characters, one in the userinfo and
// one as a ?password= parameter, both pointing at a port nobody listens on.
const PASSWORD_A = 'p@ss:w/rd%!#$&*(x)';
const PASSWORD_B = 'Tr0ub4dor&3?x=y';
const forms = (p: string) => [p, encodeURIComponent(p)];

let t: TestApp;
const logs: string[] = [];

before(async () => {
  t = await startTestApp({
    label: 'secrets',
    logStream: { write: (line) => void logs.push(line) },
    env: {
      STAGING_DATABASE_URL: `postgres://sfuser:${encodeURIComponent(PASSWORD_A)}@127.0.0.1:1/staging`,
      PRODUCTION_DATABASE_URL: `postgres://sfuser@127.0.0.1:1/production?password=${encodeURIComponent(PASSWORD_B)}`,
    },
  });
});
after(() => t.close());

test('passwords of failing target URLs appear in no response, log line, metric or stored row', async () => {
  const seen: string[] = [];
  const call = async (method: 'get' | 'post', path: string, body?: object) => {
    const req = t.http()[method](path).set('authorization', bearer('root'));
    const res = await (body ? req.send(body) : req);
    seen.push(`${path} ${res.status} ${JSON.stringify(res.headers)} ${res.text}`);
    return res;
  };
  for (const environment of ['staging', 'production']) {
    const created = await call('post', '/v1/runs', { environment, description: 'secret test' });
    assert.equal(created.status, 503, created.text);
    assert.match(created.body.detail, /Cannot connect to the .* database/);
  }
  const envs = await call('get', '/v1/environments');
  assert.ok(envs.body.every((e: { reachable: boolean }) => !e.reachable));
  await call('get', '/v1/etl/health?environment=staging');
  await call('get', '/v1/runs');
  const metrics = await t.http().get('/metrics');
  seen.push(metrics.text);
  assert.match(metrics.text, /starforge_target_up\{environment="staging"\} 0/);
  await t.settle();

  // Everything the control database holds, as text.
  const tables = (await t.control.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)).rows.map((r) => r.tablename as string);
  for (const table of tables) seen.push(JSON.stringify((await t.control.query(`SELECT * FROM ${table}`)).rows));
  seen.push(...logs);

  const haystack = seen.join('\n');
  for (const secret of [...forms(PASSWORD_A), ...forms(PASSWORD_B)]) {
    assert.equal(haystack.includes(secret), false, `found ${secret}`);
  }
  assert.ok(logs.length > 0, 'the logs were captured');
});
