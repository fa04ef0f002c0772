// The rehearsal keeps to its throw-away database (issue 16, items 3 and 4):
// each phase on its own session, and whatever a migration creates on the
// server outside the copy (a role) is reported and removed again, so the
// report's "The target was not touched." is true or absent.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { lintFiles } from '../../services/preflight/lint-files/index.js';
import { cancelActiveRuns, dirMigrationConfig, bearer, startTestApp, type TestApp } from '../support/app.js';
import { adminQuery } from '../support/db.js';
import { applyMigrations, migrationSource as migration, writeMigrations as writeFiles } from '../support/migrations.js';

let t: TestApp;
let dir: string;
const roles: string[] = [];

const writeMigrations = (files: Record<string, string>) => writeFiles(dir, files);
const newRole = () => {
  const role = `sf_h16_${randomBytes(4).toString('hex')}`;
  roles.push(role);
  return role;
};
const roleExists = async (role: string) => (await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;

type Report = {
  findings: Array<{ rule: string; severity: string; migration: string | null; message: string }>;
  checks: Array<{ id: string; status: string; detail: string }>;
  rehearsal: {
    steps: Array<{ phase: string; migration: string; ok: boolean; error: { message: string } | null }>;
    reversibility: Record<string, string>;
    clusterObjects: Array<{ kind: string; name: string; change: string; migration: string; cleanup: string }>;
    server: { sameAsTarget: boolean | null; method: string };
  };
};

async function createRun(environment = 'staging'): Promise<{ run: { id: string; status: string }; report: Report }> {
  const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment, description: 'rehearsal isolation' });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  const run = (await t.http().get(`/v1/runs/${res.body.id}`).set('authorization', bearer('vic'))).body;
  const report = (await t.http().get(`/v1/runs/${run.id}/preflight`).set('authorization', bearer('vic'))).body.report;
  return { run, report };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-h16-isolation-'));
  const config = dirMigrationConfig(dir);
  t = await startTestApp({ label: 'h16_isolation', migrationConfigSource: config });
});

after(async () => {
  await t.close();
  for (const role of roles) await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await cancelActiveRuns(t);
  await t.targets.staging.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;');
});

describe('cluster-global objects', () => {
  test('a role a migration creates is reported, dropped from the server afterwards, and a raw up on the target then works', async () => {
    const role = newRole();
    await writeMigrations({ '1000_reporting-role': migration(`CREATE ROLE ${role} NOLOGIN; CREATE TABLE reports (id int)`, `DROP TABLE reports; DROP ROLE ${role}`) });
    const { report } = await createRun();
    const finding = report.findings.find((f) => f.rule === 'cluster-global-object');
    assert.ok(finding, JSON.stringify(report.findings));
    assert.equal(finding.severity, 'warning');
    assert.equal(finding.migration, '1000_reporting-role');
    assert.match(finding.message, new RegExp(`creates role ${role} .*server-wide.*on the rehearsal server: dropped`));
    assert.deepEqual(report.rehearsal.clusterObjects.map((o) => [o.kind, o.name, o.change, o.migration, o.cleanup]), [['role', role, 'created', '1000_reporting-role', 'dropped']]);
    assert.equal(await roleExists(role), false, 'the rehearsal removed the role from its server');
    // The tests' rehearsal server is the targets' own: said, and by what means.
    assert.equal(report.rehearsal.server.sameAsTarget, true);
    assert.match(report.rehearsal.server.method, /system identifier/);
    const server = report.findings.find((f) => f.rule === 'rehearsal-on-target-server');
    assert.equal(server?.severity, 'warning');
    assert.match(server!.message, /PREFLIGHT_DATABASE_URL/);

    // What the issue saw: a raw node-pg-migrate up on the target failed with `role "…" already exists`.
    await applyMigrations(t.targets.staging.url, dir, 1);
    assert.equal(await roleExists(role), true);
  });

  test('after a rehearsal that created a role on the target\'s server, a failure no longer claims the target was untouched', async () => {
    const role = newRole();
    await writeMigrations({
      '1000_reader-role': migration(`CREATE ROLE ${role} NOLOGIN`, `DROP ROLE ${role}`),
      '2000_broken': migration('SELECT 1 / 0'),
    });
    const { run, report } = await createRun();
    assert.equal(run.status, 'preflight_failed');
    const failure = report.findings.find((f) => f.rule === 'rehearsal-failed')!;
    assert.match(failure.message, /division by zero/);
    assert.doesNotMatch(failure.message, /target was not touched/);
    assert.equal(await roleExists(role), false);
    await t.http().post(`/v1/runs/${run.id}/cancel`).set('authorization', bearer('olga')).send({});

    // Without anything server-wide, the same failure says it (and it is true).
    await writeMigrations({ '1000_reader-table': migration('CREATE TABLE readers (id int)', 'DROP TABLE readers'), '2000_broken': migration('SELECT 1 / 0') });
    const plain = await createRun();
    assert.match(plain.report.findings.find((f) => f.rule === 'rehearsal-failed')!.message, /The target was not touched\.$/);
  });

  test('sfm lint: a role a JS migration creates on the scratch server is named and dropped', async () => {
    const role = newRole();
    const files = await mkdtemp(join(tmpdir(), 'sf-h16-lint-'));
    try {
      await writeFile(join(files, '1000_role.js'), migration(`CREATE ROLE ${role} NOLOGIN`, `DROP ROLE ${role}`));
      const result = await lintFiles({ paths: [files], databaseUrl: t.targets.staging.url });
      assert.equal(result.method, 'rehearsal');
      const finding = result.findings.find((f) => f.rule === 'cluster-global-object');
      assert.ok(finding, JSON.stringify(result.findings));
      assert.equal(finding.severity, 'warning');
      assert.match(finding.message, new RegExp(`creates role ${role}.*dropped`));
      assert.equal(await roleExists(role), false);
    } finally {
      await rm(files, { recursive: true, force: true });
    }
  });
});

describe('each phase on its own session', () => {
  test('a temp table and a SET from an up do not make the downs fail', async () => {
    await writeMigrations({
      '1000_list-type': migration("CREATE TYPE list AS ENUM ('a', 'b'); CREATE TABLE items (v list)", 'DROP TABLE items; DROP TYPE list'),
      // Both outlive the migration in its session: the temp table depends on the type, the search_path hides public.
      '2000_scratch': migration('CREATE TEMP TABLE scratch (v list); SET search_path TO pg_catalog', 'SELECT 1'),
    });
    const { run, report } = await createRun();
    assert.deepEqual(report.rehearsal.steps.map((s) => `${s.phase}:${s.migration}:${s.ok ? 'ok' : s.error?.message}`), [
      'up:1000_list-type:ok', 'up:2000_scratch:ok', 'down:2000_scratch:ok', 'down:1000_list-type:ok', 'up-again:1000_list-type:ok', 'up-again:2000_scratch:ok',
    ]);
    assert.deepEqual(report.rehearsal.reversibility, { '1000_list-type': 'reversible', '2000_scratch': 'reversible' }, 'a temp table and a SET are not schema');
    assert.equal(report.findings.some((f) => f.rule.startsWith('rehearsal-')  && f.rule !== 'rehearsal-on-target-server'), false, JSON.stringify(report.findings));
    assert.equal(run.status, 'awaiting_approval', JSON.stringify(report.findings));
  });

  test('a SAVEPOINT inside a migration: rehearsed, and its down checked', async () => {
    await writeMigrations({
      '1000_ledger': migration(
        'CREATE TABLE ledger (id int PRIMARY KEY); SAVEPOINT seed; INSERT INTO ledger VALUES (1); ROLLBACK TO SAVEPOINT seed; INSERT INTO ledger VALUES (2); RELEASE SAVEPOINT seed',
        'DROP TABLE ledger',
      ),
    });
    const { run, report } = await createRun();
    assert.equal(run.status, 'awaiting_approval', JSON.stringify(report.findings));
    assert.ok(report.rehearsal.steps.every((s) => s.ok));
    assert.deepEqual(report.rehearsal.reversibility, { '1000_ledger': 'reversible' });
  });
});
