// With migrations directories of its own (a migration config pointing at temp
// dirs): `to`, the digest and what changes it, drift between approval and
// preflight, "nothing to apply", and an active freeze.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  api, assertCompleteTrail, assertNothingWritten, assertProblem, createAwaiting, eventsOf, forgetApplied, freeEnvironments, HEX64,
  markApplied, migrationConfigSource, migrationSource, sha256, tempMigrationsDir,
} from './helpers.js';

const M = ['1800000000001_create-a', '1800000000002_create-b', '1800000000003_create-c', '1800000000004_create-d'] as const;
const initialFiles = () => Object.fromEntries(M.map((name, i) => [name, migrationSource(`CREATE TABLE t${i} (id int)`, `DROP TABLE t${i}`)]));

let t: TestApp;
let staging: Awaited<ReturnType<typeof tempMigrationsDir>>;
let production: Awaited<ReturnType<typeof tempMigrationsDir>>;
const freeze = { from: new Date(Date.now() - 3600_000).toISOString(), to: new Date(Date.now() + 7 * 24 * 3600_000).toISOString(), reason: 'test freeze' };

before(async () => {
  staging = await tempMigrationsDir(initialFiles());
  production = await tempMigrationsDir(initialFiles());
  t = await startTestApp({
    label: 'migdir',
    migrationConfigSource: migrationConfigSource({ stagingDir: staging.dir, productionDir: production.dir, productionFreezes: [freeze] }),
  });
});
afterEach(async () => {
  await freeEnvironments(t);
  await forgetApplied(t.targets.staging);
  await forgetApplied(t.targets.production);
  // Restore the directories' original content.
  for (const dir of [staging, production]) {
    for (const [name, source] of Object.entries(initialFiles())) await dir.write(name, source);
  }
  await staging.remove('1800000000005_create-e').catch(() => undefined);
});
after(async () => {
  await t.close();
  await staging.cleanup();
  await production.cleanup();
});

test('each migration carries the sha256 of its file; the digest is a sha256 of the set', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'all four' });
  assert.deepEqual(run.migrations.map((m) => m.name), [...M]);
  for (const m of run.migrations) assert.equal(m.sha256, sha256(await staging.read(m.name)));
  assert.match(run.digest, HEX64);
  assert.ok(!run.migrations.some((m) => m.sha256 === run.digest));
  // Same names and contents in another environment: the same digest.
  const prod = await createAwaiting(t, 'alice', { environment: 'production', description: 'same files' });
  assert.equal(prod.digest, run.digest);
});

test('"to" stops the run at that migration', async () => {
  const res = await api(t).create('alice', { environment: 'staging', description: 'up to b', to: M[1] });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.to, M[1]);
  assert.deepEqual(res.body.migrations.map((m: { name: string }) => m.name), [M[0], M[1]]);
  assert.match(res.body.digest, HEX64);
  await t.settle();
  const run = (await api(t).get(res.body.id)).body;
  assert.equal(run.status, 'awaiting_approval');
  assert.deepEqual(run.migrations.map((m: { name: string }) => m.name), [M[0], M[1]], 'preflight keeps the "to" limit');
  const report = (await api(t).report(run.id)).body.report;
  assert.deepEqual(report.migrations.map((m: { name: string }) => m.name), [M[0], M[1]]);
  assert.equal(report.digest, run.digest);
  await api(t).cancel(run.id, 'alice');

  // A different "to" is a different set, hence a different digest; "to" the last is the whole set.
  const upToA = await createAwaiting(t, 'alice', { environment: 'staging', description: 'up to a', to: M[0] });
  assert.deepEqual(upToA.migrations.map((m) => m.name), [M[0]]);
  assert.notEqual(upToA.digest, run.digest);
  await api(t).cancel(upToA.id, 'alice');
  const upToD = await createAwaiting(t, 'alice', { environment: 'staging', description: 'up to d', to: M[3] });
  const all = await createAwaiting(t, 'alice', { environment: 'production', description: 'all' });
  assert.equal(upToD.digest, all.digest);

  // With a and b applied, "to" c is just c; "to" a is already applied (422).
  await api(t).cancel(upToD.id, 'alice');
  await markApplied(t.targets.staging, [M[0], M[1]]);
  const justC = await createAwaiting(t, 'alice', { environment: 'staging', description: 'c', to: M[2] });
  assert.deepEqual(justC.migrations.map((m) => m.name), [M[2]]);
  await api(t).cancel(justC.id, 'alice');
  const applied = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'a again', to: M[0] }));
  assertProblem(applied, 422, /is already applied; pending migrations are: 1800000000003_create-c, 1800000000004_create-d/);
  const unknown = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'z', to: '1800000000009_create-z' }));
  assertProblem(unknown, 422, /is not a migration in the directory/);
  assert.ok(unknown.body.errors.some((e: { path: string }) => e.path === 'body/to'));
});

test('the digest changes when a migration\'s content changes, and only then', async () => {
  const first = await createAwaiting(t, 'alice', { environment: 'staging', description: 'v1' });
  await api(t).cancel(first.id, 'alice');
  const same = await createAwaiting(t, 'alice', { environment: 'staging', description: 'v1 again' });
  assert.equal(same.digest, first.digest, 'unchanged files, unchanged digest');
  await api(t).cancel(same.id, 'alice');

  await staging.write(M[2], migrationSource('CREATE TABLE t2 (id bigint)', 'DROP TABLE t2'));
  const changed = await createAwaiting(t, 'alice', { environment: 'staging', description: 'v2' });
  assert.match(changed.digest, HEX64);
  assert.notEqual(changed.digest, first.digest);
  assert.deepEqual(changed.migrations.map((m) => m.name), [...M]);
  for (let i = 0; i < M.length; i++) {
    if (i === 2) assert.notEqual(changed.migrations[i]!.sha256, first.migrations[i]!.sha256);
    else assert.equal(changed.migrations[i]!.sha256, first.migrations[i]!.sha256);
  }
  await api(t).cancel(changed.id, 'alice');

  // Even a whitespace change counts.
  await staging.write(M[2], migrationSource('CREATE TABLE t2 (id bigint)', 'DROP TABLE t2') + '\n');
  const whitespace = await createAwaiting(t, 'alice', { environment: 'staging', description: 'v3' });
  assert.notEqual(whitespace.digest, changed.digest);
});

test('content changed after an approval: re-run preflight adopts the new digest and the old approval no longer counts', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'drift' });
  const eng = await api(t).decide(run.id, 'bob', 'engineering');
  assert.equal(eng.body.approvals[0].current, true);

  await production.write(M[1], migrationSource('CREATE TABLE t1 (id int, name text)', 'DROP TABLE t1'));
  assert.equal((await api(t).preflight(run.id, 'alice')).status, 202);
  await t.settle();
  const after = (await api(t).get(run.id)).body;
  assert.equal(after.status, 'awaiting_approval');
  assert.notEqual(after.digest, run.digest);
  assert.match(after.digest, HEX64);
  assert.equal(after.migrations[1].sha256, sha256(await production.read(M[1])));
  assert.deepEqual(after.approvals.map((a: { subject: string; digest: string; current: boolean }) => [a.subject, a.digest, a.current]), [['bob', run.digest, false]]);
  const report = (await api(t).report(run.id)).body.report;
  assert.equal(report.outcome, 'passed');
  assert.equal(report.digest, after.digest);
  // The tests' rehearsal server is the targets' own, hence the warning.
  assert.deepEqual(report.findings.map((f: { rule: string; severity: string }) => [f.rule, f.severity]), [['content-changed', 'info'], ['rehearsal-on-target-server', 'warning']]);
  const passed = (await eventsOf(t, run.id)).at(-1)!;
  assert.equal(passed.type, 'preflight.passed');
  assert.equal(passed.details.digest, after.digest);

  // The new digest needs both approvals afresh; bob may approve again (a new digest), once.
  const sre = await api(t).decide(run.id, 'carol', 'sre');
  assert.equal(sre.body.status, 'awaiting_approval', 'bob\'s approval of the old digest does not fill engineering');
  const bobAgain = await api(t).decide(run.id, 'bob', 'engineering');
  assert.equal(bobAgain.status, 201, bobAgain.text);
  assert.equal(bobAgain.body.status, 'approved', 'approved; production (apply mode confirm) waits for an operator');
  const current = bobAgain.body.approvals.filter((a: { current: boolean }) => a.current);
  assert.deepEqual(current.map((a: { subject: string; digest: string }) => [a.subject, a.digest]), [['carol', after.digest], ['bob', after.digest]]);
  await assertCompleteTrail(t, bobAgain.body);
});

test('content changed after full approval: re-run preflight sends the run back to awaiting_approval', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'drift after approval' });
  await api(t).decide(run.id, 'ben', 'engineering');
  assert.equal((await api(t).decide(run.id, 'cora', 'sre')).body.status, 'approved');
  await production.write(M[3], migrationSource('CREATE TABLE t3 (id int PRIMARY KEY)', 'DROP TABLE t3'));
  assert.equal((await api(t).preflight(run.id, 'olga')).status, 202);
  await t.settle();
  const after = (await api(t).get(run.id)).body;
  assert.equal(after.status, 'awaiting_approval');
  assert.notEqual(after.digest, run.digest);
  assert.ok(after.approvals.every((a: { current: boolean }) => !a.current));
  assert.deepEqual(await assertCompleteTrail(t, after), [
    'created', 'preflight_running', 'awaiting_approval', 'approved', 'preflight_running', 'awaiting_approval',
  ]);
});

test('a migration added after creation is picked up by a re-run preflight', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'grows' });
  await staging.write('1800000000005_create-e', migrationSource('CREATE TABLE t4 (id int)'));
  await api(t).preflight(run.id, 'alice');
  await t.settle();
  const after = (await api(t).get(run.id)).body;
  assert.deepEqual(after.migrations.map((m: { name: string }) => m.name), [...M, '1800000000005_create-e']);
  assert.notEqual(after.digest, run.digest);
});

test('nothing to apply: 422, and nothing written', async () => {
  await markApplied(t.targets.production, M);
  const res = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'production', description: 'nothing' }, 'migdir-nothing'));
  assertProblem(res, 422, /Nothing to apply: production has every migration in its directory applied/);
  const envs = await api(t).environments();
  const prod = envs.body.find((e: { name: string }) => e.name === 'production');
  assert.deepEqual(prod.pending, []);
  assert.deepEqual(prod.applied.map((a: { name: string }) => a.name), [...M]);
});

test('a deleted migration file that the target has applied: 422 on create, preflight fails for an existing run', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'before delete' });
  await markApplied(t.targets.staging, [M[0]]);
  await staging.remove(M[0]);
  try {
    await api(t).preflight(run.id, 'alice');
    await t.settle();
    const failed = (await api(t).get(run.id)).body;
    assert.equal(failed.status, 'preflight_failed');
    assert.equal(failed.error.code, 'missing-migration-file');
    assert.match(failed.error.message, /no such file/);
    const res = await assertNothingWritten(t, () => api(t).create('amy', { environment: 'staging', description: 'after delete' }));
    assertProblem(res, 422, new RegExp(`${M[0]}.*no such file exists`));
  } finally {
    await staging.write(M[0], initialFiles()[M[0]]!);
  }
});

test('an active freeze is reported by GET /v1/environments', async () => {
  const envs = await api(t).environments();
  const prod = envs.body.find((e: { name: string }) => e.name === 'production');
  const expected = { from: new Date(freeze.from).toISOString(), to: new Date(freeze.to).toISOString(), reason: 'test freeze' };
  assert.deepEqual(prod.activeFreeze, expected);
  assert.deepEqual(prod.freezes, [expected]);
  const stg = envs.body.find((e: { name: string }) => e.name === 'staging');
  assert.equal(stg.activeFreeze, null);
});
