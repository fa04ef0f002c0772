// Every bad input is refused with the right problem+json status, never a 500,
// and nothing is written: runs, run_events, run_approvals, idempotency_keys,
// run_reports keep their row counts. Each create attempt carries its own
// Idempotency-Key, so a key written by mistake would show up too.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type supertest from 'supertest';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { api, assertNothingWritten, assertProblem, assertValidationProblem, createAwaiting, applyRepoMigrations, REPO_MIGRATIONS, type ApiRun } from './helpers.js';

let t: TestApp;
let run: ApiRun;
before(async () => {
  t = await startTestApp({ label: 'badinput' });
  // One production run awaiting approval, target of the per-run bad inputs.
  run = await createAwaiting(t, 'alice', { environment: 'production', description: 'bad input target' });
  // staging has its first two migrations applied, for "to" that is already applied.
  await applyRepoMigrations(t.targets.staging, 2);
});
after(() => t.close());

let keySeq = 0;
const post = (path: string, who: Parameters<typeof bearer>[0] = 'alice') =>
  t.http().post(path).set('authorization', bearer(who)).set('idempotency-key', `bad-input-${++keySeq}`);
const createWith = (body: unknown) => post('/v1/runs').send(body as object);
const rawCreate = (contentType: string, raw: string | Buffer) => post('/v1/runs').set('content-type', contentType).send(raw);

const future = () => new Date(Date.now() + 24 * 3600_000).toISOString();
const VALID = { environment: 'staging', description: 'ok' };

interface Case {
  name: string;
  send(): supertest.Test;
  status: number;
  /** For 400 validation problems: a path the errors must name. */
  path?: string;
  detail?: RegExp;
}

const CREATE_CASES: Case[] = [
  { name: 'malformed JSON', send: () => rawCreate('application/json', '{"environment": "staging", "description":'), status: 400, detail: /not valid JSON/ },
  { name: 'empty JSON body', send: () => rawCreate('application/json', ''), status: 400 },
  { name: 'no body at all', send: () => post('/v1/runs'), status: 400, path: 'body' },
  { name: 'JSON null', send: () => rawCreate('application/json', 'null'), status: 400, path: 'body' },
  { name: 'JSON array', send: () => rawCreate('application/json', '[]'), status: 400, path: 'body' },
  { name: 'JSON string', send: () => rawCreate('application/json', '"staging"'), status: 400, path: 'body' },
  { name: 'description is a number (not coerced)', send: () => createWith({ environment: 'staging', description: 123 }), status: 400, path: 'body/description' },
  { name: 'description is a boolean', send: () => createWith({ environment: 'staging', description: true }), status: 400, path: 'body/description' },
  { name: 'description is null', send: () => createWith({ environment: 'staging', description: null }), status: 400, path: 'body/description' },
  { name: 'description is an array', send: () => createWith({ environment: 'staging', description: ['a'] }), status: 400, path: 'body/description' },
  { name: 'environment is a number', send: () => createWith({ environment: 42, description: 'x' }), status: 400, path: 'body/environment' },
  { name: 'ticket is a number', send: () => createWith({ ...VALID, ticket: 7 }), status: 400, path: 'body/ticket' },
  { name: 'to is a number', send: () => createWith({ ...VALID, to: 1700000000100 }), status: 400, path: 'body/to' },
  { name: 'schedule is a string', send: () => createWith({ ...VALID, schedule: 'now' }), status: 400, path: 'body/schedule' },
  { name: 'unknown top-level field', send: () => createWith({ ...VALID, priority: 'high' }), status: 400, path: 'body/priority' },
  { name: 'unknown schedule field', send: () => createWith({ ...VALID, schedule: { mode: 'now', tz: 'UTC' } }), status: 400, path: 'body/schedule/tz' },
  { name: 'missing description', send: () => createWith({ environment: 'staging' }), status: 400, path: 'body/description' },
  { name: 'missing environment', send: () => createWith({ description: 'x' }), status: 400, path: 'body/environment' },
  { name: 'empty object', send: () => createWith({}), status: 400 },
  { name: 'empty description', send: () => createWith({ environment: 'staging', description: '' }), status: 400, path: 'body/description' },
  { name: 'description over 500 characters', send: () => createWith({ environment: 'staging', description: 'x'.repeat(501) }), status: 400, path: 'body/description' },
  { name: 'environment with bad characters', send: () => createWith({ environment: 'Prod!', description: 'x' }), status: 400, path: 'body/environment' },
  { name: 'to with bad characters', send: () => createWith({ ...VALID, to: '../../etc/passwd' }), status: 400, path: 'body/to' },
  { name: 'schedule mode unknown', send: () => createWith({ ...VALID, schedule: { mode: 'later' } }), status: 400, path: 'body/schedule/mode' },
  { name: 'schedule.at not a date-time', send: () => createWith({ ...VALID, schedule: { mode: 'at', at: 'tomorrow' } }), status: 400, path: 'body/schedule/at' },
  { name: 'unknown environment', send: () => createWith({ environment: 'nowhere', description: 'x' }), status: 422, detail: /Unknown environment "nowhere"/ },
  { name: 'unknown to', send: () => createWith({ ...VALID, to: '1700000000999_does-not-exist' }), status: 422, detail: /is not a migration in the directory/ },
  { name: 'to is the file name, not the migration name', send: () => createWith({ ...VALID, to: '1700000000300_create-user-profile-summary.js' }), status: 422 },
  { name: 'to already applied', send: () => createWith({ ...VALID, to: REPO_MIGRATIONS[1] }), status: 422, detail: /is already applied/ },
  { name: 'schedule mode at without at', send: () => createWith({ ...VALID, schedule: { mode: 'at' } }), status: 422, detail: /"schedule.at" is required/ },
  { name: 'schedule at in the past', send: () => createWith({ ...VALID, schedule: { mode: 'at', at: '2020-01-01T00:00:00Z' } }), status: 422, detail: /future/ },
  { name: 'schedule at right now', send: () => createWith({ ...VALID, schedule: { mode: 'at', at: new Date().toISOString() } }), status: 422 },
  { name: 'schedule window with at', send: () => createWith({ ...VALID, schedule: { mode: 'window', at: future() } }), status: 422, detail: /only allowed with mode "at"/ },
  { name: 'schedule now with at', send: () => createWith({ ...VALID, schedule: { mode: 'now', at: future() } }), status: 422 },
  { name: 'body over 64 KiB', send: () => createWith({ environment: 'staging', description: 'x'.repeat(70 * 1024) }), status: 413 },
  { name: 'body over 64 KiB, malformed too', send: () => rawCreate('application/json', '{'.repeat(80 * 1024)), status: 413 },
  { name: 'content-type application/xml', send: () => rawCreate('application/xml', '<run environment="staging"/>'), status: 415 },
  { name: 'content-type form-urlencoded', send: () => rawCreate('application/x-www-form-urlencoded', 'environment=staging&description=x'), status: 415 },
  { name: 'content-type text/plain with a JSON text', send: () => rawCreate('text/plain', JSON.stringify(VALID)), status: 415 },
  { name: 'content-type multipart', send: () => rawCreate('multipart/form-data; boundary=x', '--x--'), status: 415 },
];

for (const c of CREATE_CASES) {
  test(`POST /v1/runs refuses ${c.name} with ${c.status}, writing nothing`, async () => {
    const res = await assertNothingWritten(t, () => c.send());
    if (c.path) assertValidationProblem(res, c.path);
    else assertProblem(res, c.status, c.detail);
    assert.equal(res.status, c.status);
    if (c.detail) assert.match(res.body.detail, c.detail);
  });
}

test('the environment is still free after all those refusals: a valid request succeeds', async () => {
  const res = await createWith({ environment: 'staging', description: 'finally valid', to: REPO_MIGRATIONS[3] });
  assert.equal(res.status, 201, res.text);
  assert.deepEqual(res.body.migrations.map((m: { name: string }) => m.name), REPO_MIGRATIONS.slice(2, 4));
  await t.settle();
  assert.equal((await api(t).cancel(res.body.id, 'alice')).status, 200);
});

test('approvals refuse bad bodies with 400/413/415 and write nothing', async () => {
  const path = `/v1/runs/${run.id}/approvals`;
  const cases: Array<[string, () => supertest.Test, number, string?]> = [
    ['missing role', () => post(path, 'bob').send({ decision: 'approve' }), 400, 'body/role'],
    ['missing decision', () => post(path, 'bob').send({ role: 'engineering' }), 400, 'body/decision'],
    ['role admin', () => post(path, 'bob').send({ role: 'admin', decision: 'approve' }), 400, 'body/role'],
    ['role any', () => post(path, 'bob').send({ role: 'any', decision: 'approve' }), 400, 'body/role'],
    ['decision maybe', () => post(path, 'bob').send({ role: 'engineering', decision: 'maybe' }), 400, 'body/decision'],
    ['decision true', () => post(path, 'bob').send({ role: 'engineering', decision: true }), 400, 'body/decision'],
    ['comment a number', () => post(path, 'bob').send({ role: 'engineering', decision: 'approve', comment: 5 }), 400, 'body/comment'],
    ['comment too long', () => post(path, 'bob').send({ role: 'engineering', decision: 'approve', comment: 'c'.repeat(2001) }), 400, 'body/comment'],
    ['unknown field', () => post(path, 'bob').send({ role: 'engineering', decision: 'approve', digest: run.digest }), 400, 'body/digest'],
    ['no body', () => post(path, 'bob'), 400],
    ['malformed JSON', () => post(path, 'bob').set('content-type', 'application/json').send('{"role":'), 400],
    ['oversize', () => post(path, 'bob').send({ role: 'engineering', decision: 'approve', comment: 'c'.repeat(70 * 1024) }), 413],
    ['form content-type', () => post(path, 'bob').set('content-type', 'application/x-www-form-urlencoded').send('role=engineering&decision=approve'), 415],
    ['text/plain content-type', () => post(path, 'bob').set('content-type', 'text/plain').send('{"role":"engineering","decision":"approve"}'), 415],
    ['malformed id', () => post('/v1/runs/not-a-uuid/approvals', 'bob').send({ role: 'engineering', decision: 'approve' }), 400, 'params/id'],
  ];
  for (const [name, send, status, errorPath] of cases) {
    const res = await assertNothingWritten(t, send);
    if (errorPath) assertValidationProblem(res, errorPath);
    else assertProblem(res, status);
    assert.equal(res.status, status, name);
  }
  assert.deepEqual((await api(t).get(run.id)).body.approvals, []);
});

test('cancel refuses bad bodies and malformed ids, and writes nothing', async () => {
  const path = `/v1/runs/${run.id}/cancel`;
  const cases: Array<[string, () => supertest.Test, number, string?]> = [
    ['reason a number', () => post(path).send({ reason: 1 }), 400, 'body/reason'],
    ['unknown field', () => post(path).send({ reason: 'x', force: true }), 400],
    ['JSON array', () => post(path).set('content-type', 'application/json').send('[]'), 400],
    ['malformed JSON', () => post(path).set('content-type', 'application/json').send('{"reason"'), 400],
    ['reason too long', () => post(path).send({ reason: 'r'.repeat(2001) }), 400],
    ['oversize', () => post(path).send({ reason: 'r'.repeat(70 * 1024) }), 413],
    ['xml', () => post(path).set('content-type', 'application/xml').send('<cancel/>'), 415],
    ['malformed id', () => post('/v1/runs/12345/cancel').send({ reason: 'x' }), 400, 'params/id'],
    ['unknown id', () => post('/v1/runs/00000000-0000-4000-8000-000000000000/cancel').send({ reason: 'x' }), 404],
  ];
  for (const [name, send, status, errorPath] of cases) {
    const res = await assertNothingWritten(t, send);
    if (errorPath) assertValidationProblem(res, errorPath);
    else assertProblem(res, status);
    assert.equal(res.status, status, name);
  }
  assert.equal((await api(t).get(run.id)).body.status, 'awaiting_approval');
});

test('re-running preflight refuses malformed and unknown ids', async () => {
  assertProblem(await assertNothingWritten(t, () => post('/v1/runs/zzz/preflight')), 400);
  assertProblem(await assertNothingWritten(t, () => post('/v1/runs/00000000-0000-4000-8000-000000000000/preflight')), 404);
});

test('GET endpoints refuse malformed ids and query strings with 400', async () => {
  const get = (path: string) => t.http().get(path).set('authorization', bearer('vic'));
  await assertNothingWritten(t, async () => {
    for (const path of ['/v1/runs/abc', '/v1/runs/abc/events', '/v1/runs/abc/preflight', `/v1/runs/${run.id}x`, `/v1/runs/${run.id.toUpperCase()}0`]) {
      assertValidationProblem(await get(path), 'params/id');
    }
    const queries: Array<[string, string]> = [
      ['/v1/runs?limit=0', 'querystring/limit'],
      ['/v1/runs?limit=201', 'querystring/limit'],
      ['/v1/runs?limit=abc', 'querystring/limit'],
      ['/v1/runs?limit=1.5', 'querystring/limit'],
      ['/v1/runs?status=done', 'querystring/status'],
      ['/v1/runs?sort=asc', 'querystring/sort'],
      ['/v1/runs?environment=nowhere', 'querystring/environment'],
      ['/v1/runs?cursor=garbage', 'querystring/cursor'],
      [`/v1/runs?cursor=${Buffer.from('seq:abc').toString('base64url')}`, 'querystring/cursor'],
      [`/v1/runs?cursor=${Buffer.from('seq:99999999999999999999').toString('base64url')}`, 'querystring/cursor'],
      [`/v1/runs/${run.id}/preflight?format=pdf`, 'querystring/format'],
    ];
    for (const [path, errorPath] of queries) {
      const res = await get(path);
      assertValidationProblem(res, errorPath);
    }
  });
});
