// GET /v1/environments with the repo's migration config: what each target has
// applied and pending, its approval policy, active run, windows and freezes,
// and never a database URL or password. Also the drift states a target can be in.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  api, assertNothingWritten, assertProblem, createAwaiting, forgetApplied, freeEnvironments, ISO, markApplied, REPO_MIGRATIONS,
  repoMigrationSha,
} from './helpers.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({ label: 'environments' });
});
afterEach(async () => {
  await freeEnvironments(t);
  await forgetApplied(t.targets.staging);
  await forgetApplied(t.targets.production);
});
after(() => t.close());

interface EnvState {
  name: string;
  databaseUrlEnv: string;
  configured: boolean;
  reachable: boolean;
  error: string | null;
  migrationsTable: string;
  applied: Array<{ name: string; runOn: string }>;
  pending: Array<{ name: string; sha256: string }>;
  requiredApprovals: string[];
  activeRun: { id: string; status: string } | null;
  windows: unknown[];
  freezes: Array<{ from: string; to: string; reason: string }>;
  activeFreeze: unknown;
}

async function environments(): Promise<Record<string, EnvState>> {
  const res = await api(t).environments();
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assertNoSecrets(res.text);
  return Object.fromEntries((res.body as EnvState[]).map((e) => [e.name, e]));
}

function assertNoSecrets(text: string): void {
  for (const secret of [t.targets.staging.url, t.targets.production.url, t.control.url, t.targets.staging.name, t.targets.production.name, t.control.name]) {
    assert.ok(!text.includes(secret), `response leaks ${secret}`);
  }
  assert.doesNotMatch(text, /postgres(ql)?:\/\//);
  assert.doesNotMatch(text, /127\.0\.0\.1|localhost/);
}

test('both environments, empty targets: everything pending, policy, windows, freezes, no active run', async () => {
  const res = await api(t).environments();
  assert.deepEqual((res.body as EnvState[]).map((e) => e.name), ['staging', 'production']);
  const envs = await environments();
  for (const name of ['staging', 'production']) {
    const env = envs[name]!;
    assert.equal(env.configured, true);
    assert.equal(env.reachable, true);
    assert.equal(env.error, null);
    assert.equal(env.databaseUrlEnv, `${name.toUpperCase()}_DATABASE_URL`);
    assert.equal(env.migrationsTable, 'public.pgmigrations');
    assert.deepEqual(env.applied, []);
    assert.deepEqual(env.pending.map((p) => p.name), [...REPO_MIGRATIONS]);
    for (const p of env.pending) assert.equal(p.sha256, await repoMigrationSha(p.name));
    assert.equal(env.activeRun, null);
  }
  assert.deepEqual(envs.staging!.requiredApprovals, ['any']);
  assert.deepEqual(envs.production!.requiredApprovals, ['engineering', 'sre']);
  assert.deepEqual(envs.staging!.windows, []);
  assert.deepEqual(envs.staging!.freezes, []);
  assert.equal(envs.staging!.activeFreeze, null);
  assert.deepEqual(envs.production!.windows, [{ cron: '0 2 * * 2-4', durationMinutes: 120, timezone: 'Europe/Berlin' }]);
  const freeze = { from: '2026-12-20T00:00:00.000Z', to: '2027-01-05T00:00:00.000Z', reason: 'holiday freeze' };
  assert.deepEqual(envs.production!.freezes, [freeze]);
  const now = Date.now();
  const inFreeze = Date.parse(freeze.from) <= now && now < Date.parse(freeze.to);
  assert.deepEqual(envs.production!.activeFreeze, inFreeze ? freeze : null);
});

test('applied migrations are listed with their time and drop out of pending', async () => {
  await markApplied(t.targets.staging, REPO_MIGRATIONS.slice(0, 3));
  const envs = await environments();
  assert.deepEqual(envs.staging!.applied.map((a) => a.name), REPO_MIGRATIONS.slice(0, 3));
  for (const a of envs.staging!.applied) assert.match(a.runOn, ISO);
  assert.deepEqual(envs.staging!.pending.map((p) => p.name), REPO_MIGRATIONS.slice(3));
  assert.equal(envs.production!.pending.length, 8, 'production is unaffected');
});

test('activeRun follows the run holding the environment through its statuses', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'hold production' });
  let envs = await environments();
  assert.deepEqual(envs.production!.activeRun, { id: run.id, status: 'awaiting_approval' });
  assert.equal(envs.staging!.activeRun, null);

  await api(t).decide(run.id, 'bob', 'engineering');
  await api(t).decide(run.id, 'carol', 'sre');
  envs = await environments();
  // Approved and waiting for an operator's confirmation (the repo's production is in apply mode confirm): still holding production.
  assert.deepEqual(envs.production!.activeRun, { id: run.id, status: 'approved' });

  await api(t).cancel(run.id, 'alice');
  envs = await environments();
  assert.equal(envs.production!.activeRun, null);
});

test('a target with an applied migration that has no file: reported, and runs are refused with 422', async () => {
  await markApplied(t.targets.production, [REPO_MIGRATIONS[0], '1700000000050_ghost-migration']);
  const envs = await environments();
  assert.equal(envs.production!.reachable, true);
  assert.match(envs.production!.error ?? '', /1700000000050_ghost-migration.*no such file/);
  assert.deepEqual(envs.production!.applied.map((a) => a.name), [REPO_MIGRATIONS[0], '1700000000050_ghost-migration']);
  const res = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'production', description: 'ghost' }));
  assertProblem(res, 422, /1700000000050_ghost-migration.*no such file exists/);
});

test('a pending migration ordered before an applied one: reported, and runs are refused with 422', async () => {
  await markApplied(t.targets.staging, [REPO_MIGRATIONS[2]]);
  const envs = await environments();
  assert.match(envs.staging!.error ?? '', /sorts before/);
  const res = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'out of order' }));
  assertProblem(res, 422, new RegExp(`Pending migration "${REPO_MIGRATIONS[0]}" sorts before migration "${REPO_MIGRATIONS[2]}"`));
});

test('a fully migrated target has nothing pending; creating a run is 422 Nothing to apply', async () => {
  await markApplied(t.targets.staging, REPO_MIGRATIONS);
  const envs = await environments();
  assert.deepEqual(envs.staging!.pending, []);
  assert.equal(envs.staging!.applied.length, 8);
  assert.equal(envs.staging!.error, null);
  const res = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'nothing' }, 'env-nothing'));
  assertProblem(res, 422, /Nothing to apply/);
  const to = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'nothing', to: REPO_MIGRATIONS[7] }));
  assertProblem(to, 422, /is already applied/);
});

test('GET /v1/environments needs a token and is open to every role', async () => {
  const anon = await t.http().get('/v1/environments');
  assertProblem(anon, 401);
  assert.match(String(anon.headers['www-authenticate']), /^Bearer/);
  for (const who of ['vic', 'alice', 'bob', 'carol', 'olga', 'root'] as const) {
    const res = await api(t).environments(who);
    assert.equal(res.status, 200, who);
    assert.equal(res.body.length, 2);
  }
});
