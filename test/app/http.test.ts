import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import supertest from 'supertest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { generateOpenApiDocument } from '../../src/openapi.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { authenticate } from '../../src/plugins/auth.js';
import { errorsPlugin } from '../../src/plugins/errors.js';
import { bearer, startTestApp, tokenOf, type TestApp } from '../support/app.js';

const PROBLEM = /^application\/problem\+json/;

describe('health, docs and errors', () => {
  let t: TestApp;
  const logLines: string[] = [];
  before(async () => {
    t = await startTestApp({ label: 'http', logStream: { write: (line) => void logLines.push(line) } });
  });
  after(() => t.close());

  test('GET /healthz is public', async () => {
    const res = await t.http().get('/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('GET /readyz is 200 when the control database answers', async () => {
    const res = await t.http().get('/readyz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ready' });
  });

  test('GET /docs/json is an OpenAPI 3 document listing the API', async () => {
    const res = await t.http().get('/docs/json');
    assert.equal(res.status, 200);
    assert.match(res.body.openapi, /^3\./);
    for (const path of ['/v1/runs', '/v1/runs/{id}', '/v1/runs/{id}/approvals', '/v1/runs/{id}/cancel', '/v1/runs/{id}/events', '/v1/environments', '/healthz', '/readyz']) {
      assert.ok(res.body.paths[path], `documents ${path}`);
    }
    const ui = await t.http().get('/docs/');
    assert.equal(ui.status, 200);
    assert.match(ui.text, /swagger/i);
  });

  test('a /v1 path without a token is 401 problem+json, even when no such route exists', async () => {
    for (const path of ['/v1/anything', '/v1/runs']) {
      const res = await t.http().get(path);
      assert.equal(res.status, 401);
      assert.match(res.headers['content-type']!, PROBLEM);
      assert.match(res.headers['www-authenticate']!, /^Bearer/);
      assert.equal(res.body.status, 401);
      assert.equal(res.body.type, 'https://starforge.dev/problems/unauthorized');
      assert.ok(res.body.title && res.body.detail);
    }
    const wrong = await t.http().get('/v1/runs').set('authorization', 'Bearer not-a-known-token-at-all');
    assert.equal(wrong.status, 401);
    const basic = await t.http().get('/v1/runs').set('authorization', `Basic ${tokenOf('root')}`);
    assert.equal(basic.status, 401, 'only the Bearer scheme is accepted');
  });

  test('an unknown route with a valid token is 404 problem+json', async () => {
    const res = await t.http().get('/v1/anything').set('authorization', bearer('vic'));
    assert.equal(res.status, 404);
    assert.match(res.headers['content-type']!, PROBLEM);
    assert.equal(res.body.status, 404);
  });

  test('a known token without the role is 403, and admin passes every role check', async () => {
    const forbidden = await t.http().post('/v1/runs').set('authorization', bearer('vic')).send({ environment: 'staging', description: 'x' });
    assert.equal(forbidden.status, 403);
    assert.match(forbidden.headers['content-type']!, PROBLEM);
    assert.match(forbidden.body.detail, /requester/);
    const admin = await t.http().post('/v1/runs').set('authorization', bearer('root')).send({ environment: 'nowhere', description: 'x' });
    assert.equal(admin.status, 422, 'admin got past auth to validation');
  });

  test('validation errors list the failing fields', async () => {
    const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 42, extra: true });
    assert.equal(res.status, 400);
    assert.match(res.headers['content-type']!, PROBLEM);
    assert.ok(Array.isArray(res.body.errors) && res.body.errors.length > 0);
    assert.ok(res.body.errors.every((e: { path: string; message: string }) => typeof e.path === 'string' && typeof e.message === 'string'));
  });

  test('every response carries a request id', async () => {
    const res = await t.http().get('/healthz').set('x-request-id', 'trace-123');
    assert.equal(res.headers['x-request-id'], 'trace-123');
  });

  test('tokens never reach the logs', async () => {
    await t.http().get('/v1/runs').set('authorization', bearer('root'));
    await t.http().get('/v1/runs').set('authorization', 'Bearer some-unknown-secret-token');
    const logs = logLines.join('');
    assert.ok(logs.includes('"url":"/v1/runs"'), 'requests are logged');
    assert.equal(logs.includes(tokenOf('root')), false);
    assert.equal(logs.includes('some-unknown-secret-token'), false);
    assert.equal(logs.includes(t.control.url), false);
  });

  test('connection strings inside logged errors are scrubbed', async () => {
    t.app.log.error({ err: new Error('connect failed for postgres://admin:Hunter2Pw@db.internal:5432/prod') }, 'boom');
    const line = logLines.find((l) => l.includes('"msg":"boom"'));
    assert.ok(line, 'the error was logged');
    assert.equal(line.includes('Hunter2Pw'), false);
    assert.equal(line.includes('db.internal'), false);
    assert.match(line, /postgres:\/\/\[redacted\]/);
  });
});

describe('readiness with the control database down', () => {
  test('GET /readyz is 503 and says why without the URL', async () => {
    const config = await loadConfig({
      DATABASE_URL: 'postgres://sf:TopSecretPw@127.0.0.1:1/control',
      LOG_LEVEL: 'silent',
      AUTH_TOKENS: JSON.stringify([{ subject: 'root', roles: ['admin'], token: tokenOf('root') }]),
    });
    const app = await buildApp(config, { logger: false });
    try {
      const res = await supertest(app.server).get('/readyz');
      assert.equal(res.status, 503);
      assert.equal(res.body.status, 'unavailable');
      assert.match(res.body.detail, /connection refused/);
      assert.equal(res.text.includes('TopSecretPw'), false);
      assert.equal(res.text.includes('127.0.0.1:1'), false);
      const api = await supertest(app.server).get('/v1/runs').set('authorization', bearer('root'));
      assert.equal(api.status, 503, 'an API call with the control database down is 503, not 500');
      assert.match(api.headers['content-type']!, PROBLEM);
      assert.equal(api.text.includes('TopSecretPw'), false);
      const live = await supertest(app.server).get('/healthz');
      assert.equal(live.status, 200, 'liveness does not depend on the database');
    } finally {
      await app.close();
    }
  });
});

describe('error handler', () => {
  test('a 5xx hides internals and gives a request id; framework 4xx are problem+json', async () => {
    const app = Fastify({ logger: false });
    await app.register(errorsPlugin);
    app.get('/boom', async () => {
      throw new Error('password=hunter2 at /srv/secret/file.ts:42');
    });
    app.post('/echo', async (request) => request.body);
    await app.ready();
    try {
      const boom = await supertest(app.server).get('/boom');
      assert.equal(boom.status, 500);
      assert.match(boom.headers['content-type']!, PROBLEM);
      assert.equal(boom.text.includes('hunter2'), false);
      assert.equal(boom.text.includes('file.ts'), false);
      assert.match(boom.body.detail, /Internal Server Error/);
      assert.ok(boom.body.requestId);
      const badJson = await supertest(app.server).post('/echo').set('content-type', 'application/json').send('{"a":');
      assert.equal(badJson.status, 400);
      assert.match(badJson.headers['content-type']!, PROBLEM);
      const badType = await supertest(app.server).post('/echo').set('content-type', 'application/x-unknown').send('x');
      assert.equal(badType.status, 415);
      assert.match(badType.headers['content-type']!, PROBLEM);
    } finally {
      await app.close();
    }
  });
});

describe('bearer token comparison', () => {
  test('matches only the exact token, whatever the entry order', async () => {
    const config = await loadConfig({
      AUTH_TOKENS: JSON.stringify([
        { subject: 'a', roles: ['viewer'], token: 'token-a-0123456789' },
        { subject: 'b', roles: ['sre'], token: 'token-b-0123456789' },
      ]),
    });
    assert.equal(authenticate(config.authTokens, 'Bearer token-b-0123456789')?.subject, 'b');
    assert.equal(authenticate(config.authTokens, 'bearer token-a-0123456789')?.subject, 'a');
    assert.equal(authenticate(config.authTokens, 'Bearer token-b-012345678'), null);
    assert.equal(authenticate(config.authTokens, 'Bearer '), null);
    assert.equal(authenticate(config.authTokens, undefined), null);
    assert.equal(authenticate([], 'Bearer token-a-0123456789'), null);
  });
});

describe('openapi/openapi.json', () => {
  test('matches the document generated from the route schemas (run `npm run openapi` after changing a route)', async () => {
    const committed = await readFile(join(PROJECT_ROOT, 'openapi/openapi.json'), 'utf8');
    assert.equal(committed, await generateOpenApiDocument());
  });
});
