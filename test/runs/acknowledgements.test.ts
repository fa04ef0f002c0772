import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { cancelActiveRuns, bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { applyMigrations, migrationSource as migration, writeMigrations } from '../support/migrations.js';

// Issue 16, item 2: a finding is acknowledged per run through the API, by an
// approver who is not the requester, bound to the digest, audited, shown in
// the report; no migration file is edited. And per-environment rule levels.

let t: TestApp;
let dir: string;

interface Finding { id: string; rule: string; severity: string; migration: string | null; acknowledged: null | { reason: string; by: string | null; at: string | null; via: string } }
interface Report { outcome: string; digest: string; findings: Finding[] }

const ACCOUNTS = migration('CREATE TABLE accounts (id int PRIMARY KEY, email text, legacy text)', 'DROP TABLE accounts');
const ADD_NOTE = migration('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note');
const DROP_LEGACY = migration('ALTER TABLE accounts DROP COLUMN legacy', 'ALTER TABLE accounts ADD COLUMN legacy text');

const get = (path: string, who: Subject = 'vic') => t.http().get(path).set('authorization', bearer(who));
const ack = (runId: string, who: Subject, body: Record<string, unknown>) => t.http().post(`/v1/runs/${runId}/acknowledgements`).set('authorization', bearer(who)).send(body);
const runOf = async (id: string) => (await get(`/v1/runs/${id}`)).body as { id: string; status: string; digest: string; error: unknown };
const reportOf = async (id: string) => (await get(`/v1/runs/${id}/preflight`)).body.report as Report;

async function createRun(environment: string, by: Subject = 'rita', extra: Record<string, unknown> = {}) {
  const res = await t.http().post('/v1/runs').set('authorization', bearer(by)).send({ environment, description: 'acknowledgements', ...extra });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  return { run: await runOf(res.body.id), report: await reportOf(res.body.id) };
}

async function rerun(id: string) {
  const res = await t.http().post(`/v1/runs/${id}/preflight`).set('authorization', bearer('olga')).send();
  assert.equal(res.status, 202, res.text);
  await t.settle();
  return { run: await runOf(id), report: await reportOf(id) };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-acks-'));
  const config = `
    const env = (urlEnv, extra = {}) => ({ databaseUrlEnv: urlEnv, migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] }, verify: { smokeEtl: false }, ...extra });
    export default { environments: {
      staging: env('STAGING_DATABASE_URL'),
      production: env('PRODUCTION_DATABASE_URL', { lint: { rules: { 'ban-drop-column': 'off', 'observed-dropped-data': 'off', 'ban-drop-not-null': 'error' } } }),
    } };`;
  t = await startTestApp({ label: 'acks', migrationConfigSource: config });
  await writeMigrations(dir, { '1000_accounts': ACCOUNTS });
  for (const target of [t.targets.staging, t.targets.production]) {
    await applyMigrations(target.url, dir, 1);
    await target.query(`INSERT INTO accounts SELECT g, 'u' || g || '@x', 'l' FROM generate_series(1, 100) g`);
  }
});

after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await cancelActiveRuns(t);
});

describe('POST /v1/runs/:id/acknowledgements', () => {
  test('an sre acknowledges the last error: audited, shown in the report, and the run moves to awaiting_approval; the rules around it hold', async () => {
    await writeMigrations(dir, { '1000_accounts': ACCOUNTS, '1500_add-note': ADD_NOTE, '2000_drop-legacy': DROP_LEGACY });
    const { run, report } = await createRun('staging');
    assert.equal(run.status, 'preflight_failed');
    const [drop, ...others] = report.findings.filter((f) => f.severity === 'error');
    assert.equal(drop?.rule, 'ban-drop-column', JSON.stringify(report.findings));
    assert.deepEqual(others, []);
    assert.match(drop.id, /^[0-9a-f]{16}$/);

    // Who may not, and what is refused: nothing recorded by any of these.
    assert.equal((await ack(run.id, 'rita', { finding: drop.id, reason: 'mine' })).status, 403, 'the requester, though an engineering approver');
    assert.equal((await ack(run.id, 'alice', { finding: drop.id, reason: 'x' })).status, 403, 'no approver role');
    assert.equal((await ack(run.id, 'olga', { finding: drop.id, reason: 'x' })).status, 403, 'an operator is no approver');
    const blank = await ack(run.id, 'carol', { finding: drop.id, reason: '   ' });
    assert.equal(blank.status, 400);
    assert.match(blank.headers['content-type']!, /application\/problem\+json/);
    assert.equal((await ack(run.id, 'carol', { finding: drop.id })).status, 400, 'a reason is required');
    const unknown = await ack(run.id, 'carol', { finding: 'ffffffffffffffff', reason: 'x' });
    assert.equal(unknown.status, 409);
    assert.match(unknown.body.detail, /not in the latest preflight report/);
    assert.equal((await ack('0a0a0a0a-1111-4222-8333-444444444444', 'carol', { finding: drop.id, reason: 'x' })).status, 404);

    // Another run holds the environment: leaving preflight_failed would take it back, so the ack is refused whole.
    const other = await createRun('staging', 'alice', { to: '1500_add-note' });
    assert.equal(other.run.status, 'awaiting_approval');
    const busy = await ack(run.id, 'carol', { finding: drop.id, reason: 'unused since release 41' });
    assert.equal(busy.status, 409, busy.text);
    assert.match(busy.body.detail, new RegExp(`already has an active run \\(${other.run.id}`));
    assert.deepEqual((await get(`/v1/runs/${run.id}/acknowledgements`)).body.items, []);
    await t.http().post(`/v1/runs/${other.run.id}/cancel`).set('authorization', bearer('olga')).send({});

    const res = await ack(run.id, 'carol', { finding: drop.id, reason: 'unused since release 41 (OPS-12)' });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.run.status, 'awaiting_approval');
    assert.deepEqual((({ finding, rule, by, role, reason, digest }) => ({ finding, rule, by, role, reason, digest }))(res.body.acknowledgement), {
      finding: drop.id, rule: 'ban-drop-column', by: 'carol', role: 'sre', reason: 'unused since release 41 (OPS-12)', digest: run.digest,
    });
    assert.equal((await runOf(run.id)).status, 'awaiting_approval');
    assert.equal((await runOf(run.id)).error, null);

    const events = (await get(`/v1/runs/${run.id}/events`)).body as Array<{ type: string; actor: string; from: string | null; to: string | null; details: Record<string, unknown> }>;
    const acked = events.find((e) => e.type === 'finding.acknowledged');
    assert.deepEqual(acked && { actor: acked.actor, ...acked.details }, {
      actor: 'carol', finding: drop.id, rule: 'ban-drop-column', migration: '2000_drop-legacy', severity: 'error', role: 'sre', reason: 'unused since release 41 (OPS-12)', digest: run.digest,
    });
    const moved = events.find((e) => e.type === 'preflight.acknowledged');
    assert.deepEqual(moved && [moved.actor, moved.from, moved.to], ['carol', 'preflight_failed', 'awaiting_approval']);

    const served = await reportOf(run.id);
    assert.equal(served.outcome, 'passed');
    const shown = served.findings.find((f) => f.id === drop.id)!;
    assert.equal(shown.severity, 'warning');
    assert.deepEqual({ ...shown.acknowledged, at: typeof shown.acknowledged?.at }, { reason: 'unused since release 41 (OPS-12)', by: 'carol', at: 'string', via: 'api' });
    const md = await get(`/v1/runs/${run.id}/preflight?format=md`);
    assert.match(md.text, /acknowledged: unused since release 41 \(OPS-12\)/);
    // The stored report is not rewritten: the ack lives in its own table.
    const stored = (await t.control.query(`SELECT body FROM run_reports WHERE run_id = $1 AND kind = 'preflight' ORDER BY id DESC LIMIT 1`, [run.id])).rows[0].body as Report;
    assert.equal(stored.findings.find((f) => f.id === drop.id)!.acknowledged, null);

    // Twice is refused, by anyone.
    const again = await ack(run.id, 'cora', { finding: drop.id, reason: 'me too' });
    assert.equal(again.status, 409);
    assert.match(again.body.detail, /already acknowledged by carol/);
    const list = (await get(`/v1/runs/${run.id}/acknowledgements`)).body.items as Array<{ finding: string; by: string }>;
    assert.deepEqual(list.map((a) => [a.finding, a.by]), [[drop.id, 'carol']]);

    // A re-run preflight of the same content keeps it (same finding id, same digest).
    const same = await rerun(run.id);
    assert.equal(same.run.status, 'awaiting_approval', JSON.stringify(same.report.findings));
    assert.equal(same.report.findings.find((f) => f.id === drop.id)?.acknowledged?.by, 'carol');

    // Changed content: another digest, the ack does not carry over.
    await writeFile(join(dir, '2000_drop-legacy.js'), `// legacy is gone\n${DROP_LEGACY}`);
    const changed = await rerun(run.id);
    assert.notEqual(changed.run.digest, run.digest);
    assert.equal(changed.run.status, 'preflight_failed');
    const fresh = changed.report.findings.find((f) => f.rule === 'ban-drop-column')!;
    assert.deepEqual([fresh.id, fresh.severity, fresh.acknowledged], [drop.id, 'error', null], 'same finding, new digest: not acknowledged');
  });

  test('infrastructure findings cannot be acknowledged, and say why', async () => {
    await writeMigrations(dir, { '1000_accounts': ACCOUNTS, '2000_broken': migration('SELECT 1 / 0', 'SELECT 1') });
    const { run, report } = await createRun('staging');
    const failed = report.findings.find((f) => f.rule === 'rehearsal-failed')!;
    const res = await ack(run.id, 'carol', { finding: failed.id, reason: 'it works on my laptop' });
    assert.equal(res.status, 409);
    assert.match(res.body.detail, /cannot be acknowledged: the migration failed on the rehearsal copy/);
  });

  test('acks make no sense once a run is past approval', async () => {
    await writeMigrations(dir, { '1000_accounts': ACCOUNTS, '1500_add-note': ADD_NOTE });
    const { run, report } = await createRun('staging');
    assert.equal(run.status, 'awaiting_approval');
    await t.http().post(`/v1/runs/${run.id}/cancel`).set('authorization', bearer('olga')).send({});
    const finding = report.findings[0];
    const res = await ack(run.id, 'carol', { finding: finding?.id ?? '0000000000000000', reason: 'x' });
    assert.equal(res.status, 409);
    assert.match(res.body.detail, /is cancelled; findings are acknowledged while it is preflight_failed or awaiting_approval/);
  });
});

describe('per-environment rule levels (lint.rules)', () => {
  test("'off' removes a rule's findings, 'error' raises a warning", async () => {
    const relax = migration('ALTER TABLE accounts DROP COLUMN legacy; ALTER TABLE accounts ALTER COLUMN email DROP NOT NULL', 'SELECT 1');
    await writeMigrations(dir, { '1000_accounts': ACCOUNTS, '2000_relax': relax });
    const staging = await createRun('staging');
    const severity = (r: Report, rule: string) => r.findings.filter((f) => f.rule === rule).map((f) => f.severity);
    assert.deepEqual(severity(staging.report, 'ban-drop-column'), ['error']);
    assert.deepEqual(severity(staging.report, 'ban-drop-not-null'), ['warning']);
    const production = await createRun('production');
    assert.deepEqual(severity(production.report, 'ban-drop-column'), [], 'off in production');
    assert.deepEqual(severity(production.report, 'observed-dropped-data'), [], 'levels apply to observed findings too');
    assert.deepEqual(severity(production.report, 'ban-drop-not-null'), ['error']);
  });

  test('an unknown rule id or level stops start-up naming the key', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'sf-lint-config-'));
    try {
      for (const [rules, key] of [
        [`{ 'ban-drop-tabel': 'off' }`, 'environments.production.lint.rules.ban-drop-tabel'],
        [`{ 'ban-drop-table': 'fatal' }`, 'environments.production.lint.rules.ban-drop-table'],
      ] as const) {
        const file = join(tmp, `config-${key.length}-${rules.length}.js`);
        await writeFile(file, `export default { environments: { production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', lint: { rules: ${rules} } } } };`);
        await assert.rejects(loadConfig({ DATABASE_URL: 'postgres://u:p@localhost:5432/control', MIGRATION_CONFIG: file }), (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.key, key);
          return true;
        });
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
