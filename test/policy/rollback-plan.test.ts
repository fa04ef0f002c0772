// The rollback plan: for `down` the SQL of each down migration (captured in
// the preflight rehearsal), which are reversible, and what they drop with the
// exact rows and sizes on the target now; for `restore` the backup's age and
// the writes since it that would be lost. Requests and approvals carry the
// plan; an approval names its digest and is refused when the plan changed.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { applyMigrations, FIXTURE_BASE, migrationSource, writeMigrations } from '../support/migrations.js';
import { assertNothingWritten, assertProblem } from '../runs/helpers.js';
import { eventually, policyApi, resetTargets, startPolicyApp, type PolicyApp } from './helpers.js';

let app: PolicyApp;
before(async () => {
  app = await startPolicyApp({ label: 'rbplan' });
});
after(() => app.close());
afterEach(() => resetTargets(app.t));

const CREATE_TROOPS = migrationSource('CREATE TABLE troops (id int PRIMARY KEY, name text)', 'DROP TABLE troops');
const ADD_NOTE = migrationSource('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note');
// Its down fails (the table it drops is not there), so it cannot be reversed.
const NO_WAY_BACK = migrationSource('CREATE TABLE scratch (id int)', 'DROP TABLE no_such_table');

/** A staging run that created troops and added accounts.note, then was used: 525 troops, 7 notes. */
async function usedRun(extra: Record<string, string> = {}): Promise<string> {
  const { t } = app;
  const api = policyApi(t);
  await writeMigrations(app.stagingDir, FIXTURE_BASE);
  await applyMigrations(t.targets.staging.url, app.stagingDir, 2);
  await writeMigrations(app.stagingDir, { ...FIXTURE_BASE, '2000_create-troops': CREATE_TROOPS, '2100_add-note': ADD_NOTE, ...extra });
  const id = await api.created('staging', 'troops and notes');
  await api.approve(id, 'staging');
  assert.equal((await api.call('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' })).status, 202);
  await t.settle();
  const run = await api.run(id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  await t.targets.staging.query(`INSERT INTO troops SELECT g, 'troop ' || g FROM generate_series(1, 525) g`);
  await t.targets.staging.query(`UPDATE accounts SET note = 'vip' WHERE id <= 7`);
  await t.targets.staging.query(`DELETE FROM accounts WHERE id > 47`);
  return id;
}

describe('down plan', () => {
  test('lists each down migration\'s SQL, reversibility, and the tables and columns it drops with exact row counts and sizes', async () => {
    const api = policyApi(app.t);
    const id = await usedRun();
    const plan = await api.plan(id, 'down', 'vic');
    assert.equal(plan.mode, 'down');
    assert.match(plan.digest, /^[0-9a-f]{64}$/);
    assert.deepEqual(plan.blockers, []);
    assert.deepEqual(plan.window, { hasWindows: false, open: true, current: null, next: null });
    assert.deepEqual(plan.down.migrations, [
      { name: '2100_add-note', reversible: true, sql: ['ALTER TABLE accounts DROP COLUMN note;'] },
      { name: '2000_create-troops', reversible: true, sql: ['DROP TABLE troops;'] },
    ]);
    const drops = plan.down.drops.map((d: Record<string, unknown>) => [d.kind, d.migration, d.table, d.column, d.exists, d.rows, d.rowsExact]);
    assert.deepEqual(drops, [
      ['column', '2100_add-note', 'public.accounts', 'note', true, 7, true],
      ['table', '2000_create-troops', 'public.troops', null, true, 525, true],
    ]);
    const troops = plan.down.drops[1];
    const size = await app.t.targets.staging.query(`SELECT pg_total_relation_size('troops')::int AS bytes`);
    assert.equal(troops.bytes, size.rows[0].bytes);
    assert.equal(troops.statement, 'DROP TABLE troops');
    const notes = await app.t.targets.staging.query(`SELECT sum(pg_column_size(note))::int AS bytes FROM accounts`);
    assert.equal(plan.down.drops[0].bytes, notes.rows[0].bytes);
    assert.equal(plan.restore, null);
  });

  test('a migration whose down failed in the rehearsal is listed as not reversible, and the plan says why down is blocked', async () => {
    const api = policyApi(app.t);
    const { t } = app;
    await writeMigrations(app.stagingDir, FIXTURE_BASE);
    await applyMigrations(t.targets.staging.url, app.stagingDir, 2);
    await writeMigrations(app.stagingDir, { ...FIXTURE_BASE, '2000_no-way-back': NO_WAY_BACK });
    const res = await api.call('post', '/v1/runs', 'alice', { environment: 'staging', description: 'irreversible' });
    await t.settle();
    // Preflight fails on the broken down; what the plan says comes from that rehearsal.
    const run = await api.run(res.body.id);
    assert.equal(run.status, 'preflight_failed');
    await t.control.query(`UPDATE runs SET status = 'failed', apply_state = '{"applied": ["2000_no-way-back"]}' WHERE id = $1`, [run.id]);
    await applyMigrations(t.targets.staging.url, app.stagingDir, 1);
    const plan = await api.plan(run.id, 'down');
    assert.deepEqual(plan.down.migrations.map((m: { name: string; reversible: boolean }) => [m.name, m.reversible]), [['2000_no-way-back', false]]);
    assert.equal(plan.blockers.length, 1);
    assert.match(plan.blockers[0], /2000_no-way-back cannot be reversed/);
  });
});

describe('restore plan', () => {
  test('the backup\'s age and the writes since it, per table, that the restore would lose, and the tables it would drop', async () => {
    const api = policyApi(app.t);
    const id = await usedRun();
    const run = await api.run(id);
    let plan: any;
    await eventually(async () => {
      plan = await api.plan(id, 'restore');
      const t = (name: string) => plan.restore.writesSinceBackup.tables.find((w: { table: string }) => w.table === name);
      return t('public.troops')?.inserted === 525 && t('public.accounts')?.deleted === 3;
    }, 'the target\'s statistics show the writes');
    const r = plan.restore;
    assert.equal(r.backup.id, run.backup.id);
    assert.ok(r.backup.ageSeconds >= 0 && r.backup.ageSeconds < 600, `age ${r.backup.ageSeconds}`);
    assert.equal(r.writesSinceBackup.known, true);
    const byTable = Object.fromEntries(r.writesSinceBackup.tables.map((w: { table: string }) => [w.table, w]));
    assert.deepEqual(byTable['public.troops'], { table: 'public.troops', inserted: 525, updated: 0, deleted: 0, sinceCreated: true });
    assert.deepEqual(byTable['public.accounts'], { table: 'public.accounts', inserted: 0, updated: 7, deleted: 3, sinceCreated: false });
    assert.equal(byTable['public.pgmigrations'], undefined, 'the run\'s own history rows are what a restore is meant to remove');
    assert.ok(r.writesSinceBackup.total.inserted >= 525);
    assert.deepEqual(r.tablesDropped.map((d: Record<string, unknown>) => [d.table, d.rows, d.rowsExact]), [['public.troops', 525, true]]);
  });
});

describe('request, approval and the digest', () => {
  test('the request shows the plan; approving needs its digest; a plan that changed is refused (409) with the new plan; ordinary traffic does not change it', async () => {
    const { t } = app;
    const api = policyApi(t);
    const id = await usedRun();
    const asked = await api.call('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'bad release' });
    assert.equal(asked.status, 202, asked.text);
    const requestPlan = asked.body.plan;
    assert.equal(asked.body.planDigest, requestPlan.digest);
    assert.deepEqual(requestPlan.down.drops.map((d: { table: string; rows: number }) => [d.table, d.rows]), [['public.accounts', 7], ['public.troops', 525]]);
    const listed = (await api.call('get', `/v1/runs/${id}/rollback`, 'vic')).body[0];
    assert.equal(listed.planDigest, requestPlan.digest);
    assert.deepEqual(listed.plan.down.migrations, requestPlan.down.migrations);
    assert.ok((await api.events(id)).some((e) => e.type === 'rollback.requested' && e.details.planDigest === requestPlan.digest));

    const missing = await assertNothingWritten(t, () => api.call('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve' }));
    assertProblem(missing, 422);
    assert.equal(missing.body.errors[0].path, 'body/planDigest');

    // One more troop: still the same order of magnitude, the same plan.
    await t.targets.staging.query(`INSERT INTO troops VALUES (526, 'one more')`);
    assert.equal((await api.plan(id, 'down')).digest, requestPlan.digest);

    // Tenfold: the plan the approver looked at is not the plan any more.
    await t.targets.staging.query(`INSERT INTO troops SELECT g, 'troop ' || g FROM generate_series(527, 6000) g`);
    const stale = await assertNothingWritten(t, () => api.call('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: requestPlan.digest }));
    assertProblem(stale, 409, /plan changed since you looked at it/);
    assert.equal(stale.body.code, 'plan-changed');
    assert.notEqual(stale.body.planDigest, requestPlan.digest);
    assert.equal(stale.body.plan.down.drops[1].rows, 6000);
    assert.equal((await api.run(id)).status, 'succeeded');
    assert.equal((await t.targets.staging.query('SELECT count(*)::int AS n FROM troops')).rows[0].n, 6000, 'nothing ran');

    const ok = await api.call('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: stale.body.planDigest });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.body.approvedPlanDigest, stale.body.planDigest);
    assert.equal(ok.body.approvedPlan.down.drops[1].rows, 6000);
    assert.equal(ok.body.planDigest, requestPlan.digest, 'the request keeps the plan it was asked with');
    await t.settle();
    assert.equal((await api.run(id)).status, 'rolled_back');
    assert.equal((await t.targets.staging.query(`SELECT to_regclass('public.troops') AS t`)).rows[0].t, null);
    const approvedEvent = (await api.events(id)).find((e) => e.type === 'rollback.approved')!;
    assert.equal(approvedEvent.details.planDigest, stale.body.planDigest);
  });

  test('bad plan queries are 400 problems; an unknown run is 404', async () => {
    const api = policyApi(app.t);
    for (const q of ['', '?mode=sideways', '?mode=down&x=1']) {
      const res = await api.call('get', `/v1/runs/00000000-0000-4000-8000-000000000000/rollback/plan${q}`, 'vic');
      assertProblem(res, 400);
    }
    assertProblem(await api.call('get', '/v1/runs/00000000-0000-4000-8000-000000000000/rollback/plan?mode=down', 'vic'), 404);
    assert.equal((await app.t.http().get('/v1/runs/00000000-0000-4000-8000-000000000000/rollback/plan?mode=down')).status, 401);
  });
});
