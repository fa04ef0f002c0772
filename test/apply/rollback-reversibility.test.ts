// `rollback down` and reversibility (issue 16, item 5): a run whose
// rehearsal found a down that does not restore the schema cannot be rolled
// down (the answer points at restore), and after a real down the target's
// schema is compared with the one recorded before the apply, so a run never
// says rolled_back while the tables are still there.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { apiClient } from '../support/api-client.js';
import type { TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, migrationSource as migration, writeMigrations } from '../support/migrations.js';
import { cancelUnfinishedRuns, emptyPublicSchema } from '../support/reset.js';

let app: ApplyApp;
let t: TestApp;
let dir: string;

const { api, createAndApprove } = apiClient(() => t);

async function succeededRun(files: Record<string, string>): Promise<string> {
  await writeMigrations(dir, FIXTURE_BASE);
  await applyMigrations(t.targets.staging.url, dir, 2);
  await writeMigrations(dir, { ...FIXTURE_BASE, ...files });
  const { id, approved } = await createAndApprove('reversibility');
  assert.ok(['approved', 'scheduled'].includes(approved.body.status), approved.text);
  assert.equal((await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging', reason: 'test' })).status, 202);
  await t.settle();
  const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  return id;
}

async function rollDown(id: string) {
  const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'bad release' });
  assert.equal(asked.status, 202, asked.text);
  const plan = await api('get', `/v1/runs/${id}/rollback/plan?mode=down`, 'carol');
  const ok = await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: plan.body.digest });
  assert.equal(ok.status, 201, ok.text);
  await t.settle();
  return {
    run: (await api('get', `/v1/runs/${id}`, 'vic')).body,
    report: (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback,
  };
}

const tableExists = async (name: string) => (await t.targets.staging.query('SELECT to_regclass($1) AS t', [name])).rows[0].t !== null;

before(async () => {
  app = await startApplyApp({ label: 'h16_rollback', staging: 'verify: { smokeEtl: false, watchMinutes: 0.01 }' });
  ({ t, dir } = app);
});

after(() => app.close());

afterEach(async () => {
  await cancelUnfinishedRuns(t);
  await emptyPublicSchema(t.targets.staging);
});

describe('rollback down and reversibility', () => {
  test('down of a run with an irreversible migration is refused (409 problem+json) with a pointer to restore; the plan says why', async () => {
    // Staging: an irreversible down is a warning, so the run could be approved and applied.
    const id = await succeededRun({ '2000_audit-log': 'export const up = (pgm) => { pgm.sql("CREATE TABLE audit_log (id int)"); };\nexport const down = () => {};\n' });
    const res = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'bad release' });
    assert.equal(res.status, 409, res.text);
    assert.match(res.headers['content-type']!, /application\/problem\+json/);
    assert.match(res.body.detail, /2000_audit-log cannot be reversed \(its down migration does not restore the schema: it leaves table public\.audit_log\)/);
    assert.match(res.body.detail, new RegExp(`use mode "restore" instead \\(POST /v1/runs/${id}/rollback with "mode": "restore"\\)`));
    assert.equal((await api('get', `/v1/runs/${id}/rollback`, 'vic')).body.length, 0, 'no request was recorded');
    const plan = (await api('get', `/v1/runs/${id}/rollback/plan?mode=down`, 'carol')).body;
    assert.deepEqual(plan.down.migrations.map((m: { name: string; reversible: boolean; why?: string }) => [m.name, m.reversible, m.why]),
      [['2000_audit-log', false, 'its down migration does not restore the schema: it leaves table public.audit_log']]);
    assert.equal(plan.blockers.length, 1);
    // Restore is the way back, and it is accepted.
    assert.equal((await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'restore', confirm: 'staging', reason: 'bad release' })).status, 202);
  });

  test('an approval is refused too when the down turned out irreversible after the request (a request made before the check existed)', async () => {
    const id = await succeededRun({ '2000_add-note': FIXTURES.addNote });
    const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'bad release' });
    assert.equal(asked.status, 202, asked.text);
    const before = (await api('get', `/v1/runs/${id}/rollback/plan?mode=down`, 'carol')).body;
    // The newest preflight report now says what an older preflight would not have: the down leaves the column.
    await t.control.query(`
      INSERT INTO run_reports (run_id, kind, digest, body)
      SELECT run_id, kind, digest, jsonb_set(jsonb_set(body, '{rehearsal,reversibility,2000_add-note}', '"irreversible"'),
             '{rehearsal,downDiffs}', '{"2000_add-note": {"leaves": ["column public.accounts.note"], "removes": [], "changes": []}}')
      FROM run_reports WHERE run_id = $1 AND kind = 'preflight' ORDER BY id DESC LIMIT 1`, [id]);
    const stale = await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: before.digest });
    assert.equal(stale.status, 409, stale.text);
    const now = (await api('get', `/v1/runs/${id}/rollback/plan?mode=down`, 'carol')).body;
    const blocked = await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: now.digest });
    assert.equal(blocked.status, 409, blocked.text);
    assert.match(blocked.body.detail, /2000_add-note cannot be reversed \(its down migration does not restore the schema: it leaves column public\.accounts\.note\); use mode "restore"/);
    assert.equal((await api('get', `/v1/runs/${id}`, 'vic')).body.status, 'succeeded', 'nothing ran');
  });

  test('a real down that leaves a table behind ends failed, and the rollback report names what is left', async () => {
    // On the empty copy the down drops the table; on the target, once it holds a row, it keeps it.
    const keepIfUsed = 'DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM drafts) THEN DROP TABLE drafts; END IF; END $$';
    const id = await succeededRun({ '2000_drafts': migration('CREATE TABLE drafts (id int)', keepIfUsed), '3000_add-note': FIXTURES.addNote });
    assert.equal((await t.control.query('SELECT count(*)::int AS n FROM run_schema_baselines WHERE run_id = $1', [id])).rows[0].n, 1, 'the schema before the apply is recorded');
    await t.targets.staging.query('INSERT INTO drafts VALUES (1)');
    const { run, report } = await rollDown(id);
    assert.equal(run.status, 'failed', 'not rolled_back: the table is still there');
    assert.equal(run.error.code, 'schema-not-restored');
    assert.ok(await tableExists('public.drafts'));
    assert.deepEqual(report.reverted.map((m: { name: string }) => m.name), ['3000_add-note', '2000_drafts']);
    const migrationsCheck = report.checks.find((c: { id: string }) => c.id === 'migrations-removed');
    assert.equal(migrationsCheck.status, 'pass', 'the migrations table alone would have said success');
    const schema = report.checks.find((c: { id: string }) => c.id === 'schema-restored');
    assert.equal(schema.status, 'fail');
    assert.match(schema.detail, /the target now leaves table public\.drafts\./);
    assert.equal(report.outcome, 'failed');
    assert.match(report.failure.message, /not back to where it was before the apply: it leaves table public\.drafts\..*mode "restore"/);
  });

  test('a real down that leaves a grant in place ends failed, naming the privileges', async () => {
    // On the empty copy the down revokes; on the target, whose accounts hold rows, it does not.
    const revokeIfUnused = 'DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM accounts) THEN REVOKE SELECT ON accounts FROM PUBLIC; END IF; END $$';
    const id = await succeededRun({ '2000_grant-accounts': migration('GRANT SELECT ON accounts TO PUBLIC', revokeIfUnused) });
    const { run, report } = await rollDown(id);
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'schema-not-restored');
    assert.match(report.checks.find((c: { id: string }) => c.id === 'schema-restored').detail, /the target now changes privileges on table public\.accounts\./);
  });

  test('a baseline recorded before owners and privileges were fingerprinted (format 1) is compared in its own kinds', async () => {
    const id = await succeededRun({ '2000_add-note': FIXTURES.addNote });
    const newer = ['owner', 'privileges', 'comment', 'default privileges', 'cast', 'operator', 'collation', 'server', 'user mapping', 'foreign-data wrapper'];
    await t.control.query(`UPDATE run_schema_baselines SET format = 1,
      objects = (SELECT jsonb_agg(o) FROM jsonb_array_elements(objects) o WHERE NOT o->>'kind' = ANY($2)) WHERE run_id = $1`, [id, newer]);
    // Outside the kinds it knew: no difference to that baseline. The owner rows it lacks are not "left behind" either.
    await t.targets.staging.query('GRANT SELECT ON accounts TO PUBLIC');
    const { run, report } = await rollDown(id);
    assert.equal(run.status, 'rolled_back', JSON.stringify(run.error));
    assert.equal(report.checks.find((c: { id: string }) => c.id === 'schema-restored').status, 'pass');
  });

  test('a down that restores the schema passes the comparison and the run is rolled_back', async () => {
    const id = await succeededRun({ '2000_add-note': FIXTURES.addNote, '3000_add-score': FIXTURES.addScore });
    const { run, report } = await rollDown(id);
    assert.equal(run.status, 'rolled_back', JSON.stringify(run.error));
    assert.equal(report.checks.find((c: { id: string }) => c.id === 'schema-restored').status, 'pass');
  });
});
