// One person is one subject whatever its spelling: "alice", "Alice" and
// "ALICE" are the same identity for separation of duties. A token file cannot
// hold two spellings (test/config/subjects.test.ts), but a token re-issued
// with another spelling, or a second replica whose file spells a subject
// differently, must not turn the requester into an approver. The second
// spelling is a second app on the same control database with its own tokens.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import supertest from 'supertest';
import { buildApp } from '../../src/app.js';
import { parseAuthTokens } from '../../src/config/auth-tokens.js';
import { sameSubject, subjectKey } from '../../services/principal.js';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, writeMigrations } from '../support/migrations.js';
import { assertNothingWritten, assertProblem } from './helpers.js';

/** The other spellings and the roles their tokens carry. */
const RESPELLED = [
  { subject: 'Alice', roles: ['requester', 'engineering', 'sre'] },
  { subject: 'BOB', roles: ['sre'] },
  { subject: 'Olga', roles: ['sre'] },
] as const;
const respelledToken = (subject: string) => `respelled-token-${subject}-0123456789`;

let t: TestApp;
let other: FastifyInstance;
let dir: string;
let backups: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-subjects-migrations-'));
  backups = await mkdtemp(join(tmpdir(), 'sf-subjects-backups-'));
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 },
      verify: { smokeEtl: false, watchMinutes: 0.01 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)} } } };`;
  t = await startTestApp({ label: 'subjects', migrationConfigSource: config });
  const tokens = parseAuthTokens(JSON.stringify(RESPELLED.map((e) => ({ ...e, token: respelledToken(e.subject) }))), 'AUTH_TOKENS');
  other = await buildApp({ ...t.config, authTokens: tokens }, { logger: false });
  await writeMigrations(dir, FIXTURE_BASE);
  await applyMigrations(t.targets.staging.url, dir, 2);
  await writeMigrations(dir, { ...FIXTURE_BASE, '2000_add-note': FIXTURES.addNote });
});
after(async () => {
  await other.close();
  await t.close();
  await rm(dir, { recursive: true, force: true });
  await rm(backups, { recursive: true, force: true });
});

const as = (who: Subject) => ({ authorization: bearer(who) });
const asRespelled = (subject: (typeof RESPELLED)[number]['subject']) => ({ authorization: `Bearer ${respelledToken(subject)}` });
const http = () => t.http();
const otherHttp = () => supertest(other.server);

let ownRun = '';

async function created(who: Subject, environment: string, description: string): Promise<string> {
  const res = await http().post('/v1/runs').set(as(who)).send({ environment, description });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  const run = await http().get(`/v1/runs/${res.body.id}`).set(as('vic'));
  assert.equal(run.body.status, 'awaiting_approval', JSON.stringify(run.body.error));
  return res.body.id as string;
}

describe('subject identity', () => {
  test('NFKC, then case folding: spellings of one name are one subject, other names are not', () => {
    for (const [a, b] of [['alice', 'Alice'], ['alice', 'ALICE'], ['alice', 'ａｌｉｃｅ'], ['strasse', 'STRAßE'], ['ﬁona', 'FIONA'], ['bob.smith@example.com', 'Bob.Smith@Example.COM']]) {
      assert.ok(sameSubject(a!, b!), `${a} = ${b}`);
      assert.equal(subjectKey(a!), subjectKey(b!));
    }
    for (const [a, b] of [['alice', 'alice2'], ['alice', 'alíce'], ['bob', 'b0b'], ['ann', 'anne']]) assert.ok(!sameSubject(a!, b!), `${a} ≠ ${b}`);
  });

  test('the requester cannot approve or reject their own run under another spelling', async () => {
    const id = ownRun = await created('alice', 'production', 'alice asks');
    for (const decision of ['approve', 'reject']) {
      const res = await assertNothingWritten(t, () => otherHttp().post(`/v1/runs/${id}/approvals`).set(asRespelled('Alice')).send({ role: 'engineering', decision }));
      assertProblem(res, 403, new RegExp(`Alice requested run ${id} and cannot ${decision} it`));
    }
    const run = await http().get(`/v1/runs/${id}`).set(as('vic'));
    assert.deepEqual([run.body.status, run.body.approvals], ['awaiting_approval', []]);
  });

  test('the requester may still cancel their own run under another spelling (it is theirs)', async () => {
    const run = (await http().get(`/v1/runs/${ownRun}`).set(as('vic'))).body;
    assert.equal(run.requestedBy, 'alice');
    const res = await otherHttp().post(`/v1/runs/${ownRun}/cancel`).set(asRespelled('Alice')).send({ reason: 'mine' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'cancelled');
  });

  test('two approvals need two people: bob cannot fill the sre slot as BOB after approving as engineering', async () => {
    const id = await created('amy', 'production', 'needs two people');
    const eng = await http().post(`/v1/runs/${id}/approvals`).set(as('bob')).send({ role: 'engineering', decision: 'approve' });
    assert.equal(eng.status, 201, eng.text);
    const again = await assertNothingWritten(t, () => otherHttp().post(`/v1/runs/${id}/approvals`).set(asRespelled('BOB')).send({ role: 'sre', decision: 'approve' }));
    assertProblem(again, 409, /BOB already decided on this run \(approve as engineering\)/);
    const sre = await http().post(`/v1/runs/${id}/approvals`).set(as('carol')).send({ role: 'sre', decision: 'approve' });
    assert.equal(sre.status, 201, sre.text);
    assert.deepEqual(sre.body.approvals.map((a: { subject: string }) => a.subject), ['bob', 'carol']);
    assert.notEqual(sre.body.status, 'awaiting_approval');
  });

  test('a rollback is approved by another sre than the one who asked, whatever the spelling', async () => {
    const id = await created('alice', 'staging', 'to roll back');
    assert.equal((await http().post(`/v1/runs/${id}/approvals`).set(as('bob')).send({ role: 'engineering', decision: 'approve' })).status, 201);
    const applied = await http().post(`/v1/runs/${id}/apply`).set(as('olga')).send({ confirm: 'staging', reason: 'subjects test' });
    assert.equal(applied.status, 202, applied.text);
    await t.settle();
    const run = (await http().get(`/v1/runs/${id}`).set(as('vic'))).body;
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const asked = await http().post(`/v1/runs/${id}/rollback`).set(as('olga')).send({ mode: 'down', confirm: 'staging', reason: 'errors after release' });
    assert.equal(asked.status, 202, asked.text);

    const self = await otherHttp().post(`/v1/runs/${id}/rollback/approvals`).set(asRespelled('Olga')).send({ decision: 'approve' });
    assertProblem(self, 403, /Olga asked for this down; another sre must approve it/);
    const selfReject = await otherHttp().post(`/v1/runs/${id}/rollback/approvals`).set(asRespelled('Olga')).send({ decision: 'reject' });
    assertProblem(selfReject, 403);
    const requests = (await http().get(`/v1/runs/${id}/rollback`).set(as('vic'))).body;
    assert.deepEqual(requests.map((r: { status: string; decidedBy: string | null }) => [r.status, r.decidedBy]), [['awaiting_approval', null]]);
    assert.equal((await http().get(`/v1/runs/${id}`).set(as('vic'))).body.status, 'succeeded', 'nothing was rolled back');

    const ok = await http().post(`/v1/runs/${id}/rollback/approvals`).set(as('carol')).send({ decision: 'reject', comment: 'not needed' });
    assert.equal(ok.status, 201, ok.text);
    await t.settle();
  });
});
