import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { cancelActiveRuns, dirMigrationConfig, bearer, startTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, migrationSource as migration, writeMigrations } from '../support/migrations.js';

// Issue 16, item 1: preflight lints a run against the target as it is before
// the run. A table an earlier migration of the same run creates is new (no
// lock risk, nothing to lose), whatever the rehearsal copy holds by the time
// a later migration runs; the same statements on tables that exist on the
// target, with rows, are errors. Unqualified names resolve through the
// search_path the migration role has on the target.

let t: TestApp;
let dir: string;
let apps: TestDatabase;

interface ReportFinding { rule: string; severity: string; migration: string | null; message: string; statement: string | null }
const errors = (report: { findings: ReportFinding[] }) => report.findings.filter((f) => f.severity === 'error');

async function preflight(environment: string) {
  const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment, description: 'target reality' });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  const run = (await t.http().get(`/v1/runs/${res.body.id}`).set('authorization', bearer('vic'))).body;
  const report = (await t.http().get(`/v1/runs/${run.id}/preflight`).set('authorization', bearer('vic'))).body.report;
  return { run, report: report as { findings: ReportFinding[]; rehearsal: { steps: Array<{ ok: boolean }> } } };
}

// Migration 1 creates two tables, 2 indexes them without CONCURRENTLY, 3 drops
// one and reshapes the other: each a finding on a table with rows, none on a
// table the run itself creates.
const CREATE = migration(
  'CREATE TABLE accounts (id int PRIMARY KEY, email text, legacy text); CREATE TABLE sessions (id int PRIMARY KEY, token text)',
  'DROP TABLE sessions; DROP TABLE accounts',
);
const INDEX = migration(
  'CREATE INDEX accounts_email_idx ON accounts (email); CREATE UNIQUE INDEX sessions_token_idx ON sessions (token)',
  'DROP INDEX sessions_token_idx; DROP INDEX accounts_email_idx',
);
const RESHAPE = migration(
  'DROP TABLE sessions; ALTER TABLE accounts ADD COLUMN status text NOT NULL; ALTER TABLE accounts ALTER COLUMN email SET NOT NULL; '
    + 'ALTER TABLE accounts ALTER COLUMN id TYPE bigint; ALTER TABLE accounts DROP COLUMN legacy; DROP INDEX accounts_email_idx; ALTER TABLE accounts RENAME COLUMN email TO mail',
  'ALTER TABLE accounts RENAME COLUMN mail TO email; CREATE INDEX accounts_email_idx ON accounts (email); ALTER TABLE accounts ADD COLUMN legacy text; '
    + 'ALTER TABLE accounts ALTER COLUMN id TYPE int; ALTER TABLE accounts ALTER COLUMN email DROP NOT NULL; ALTER TABLE accounts DROP COLUMN status; '
    + 'CREATE TABLE sessions (id int PRIMARY KEY, token text); CREATE UNIQUE INDEX sessions_token_idx ON sessions (token)',
);
const RESHAPE_RULES = ['ban-drop-table', 'adding-required-field', 'adding-not-nullable-field', 'changing-column-type', 'ban-drop-column', 'require-concurrent-index-deletion', 'renaming-column'];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-target-reality-'));
  apps = await createTestDatabase('tr_apps');
  const config = dirMigrationConfig(dir, { apps: 'APPS_DATABASE_URL' });
  t = await startTestApp({ label: 'target_reality', migrationConfigSource: config, env: { APPS_DATABASE_URL: apps.url } });
});

after(async () => {
  await t.close();
  await apps.drop();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await cancelActiveRuns(t);
  await t.targets.staging.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;');
});

describe('lint against the target, not the rehearsal copy', () => {
  test('a fresh target: indexes, drops and reshapes of tables the run creates are no errors', async () => {
    await writeMigrations(dir, { '1000_create': CREATE, '2000_index': INDEX, '3000_reshape': RESHAPE });
    const { run, report } = await preflight('staging');
    assert.ok(report.rehearsal.steps.every((s) => s.ok), JSON.stringify(report.rehearsal.steps));
    assert.deepEqual(errors(report), [], 'every table the lint sees was created by this run');
    assert.equal(run.status, 'awaiting_approval');
  });

  test('the same statements on tables that exist on the target with rows are errors', async () => {
    await t.targets.staging.query(`
      CREATE TABLE accounts (id int PRIMARY KEY, email text, legacy text); CREATE TABLE sessions (id int PRIMARY KEY, token text);
      INSERT INTO accounts SELECT g, 'u' || g || '@x', 'l' FROM generate_series(1, 200) g; INSERT INTO sessions SELECT g, 't' || g FROM generate_series(1, 200) g;
      ANALYZE accounts; ANALYZE sessions;`);
    await writeMigrations(dir, { '2000_index': INDEX, '3000_reshape': RESHAPE });
    const { run, report } = await preflight('staging');
    assert.equal(run.status, 'preflight_failed');
    const index = errors(report).filter((f) => f.rule === 'require-concurrent-index-creation');
    assert.deepEqual(index.map((f) => [f.migration, /public\.(accounts|sessions)/.exec(f.message)?.[0]]), [
      ['2000_index', 'public.accounts'], ['2000_index', 'public.sessions'],
    ]);
    const reshape = new Set(errors(report).filter((f) => f.migration === '3000_reshape').map((f) => f.rule));
    for (const rule of RESHAPE_RULES) assert.ok(reshape.has(rule), `${rule} in ${[...reshape].join(', ')}`);
  });

  test('an incremental target: only the tables it already has are at risk', async () => {
    const sessions = migration('CREATE TABLE sessions (id int PRIMARY KEY, token text)', 'DROP TABLE sessions');
    const accounts = migration('CREATE TABLE accounts (id int PRIMARY KEY, email text, legacy text)', 'DROP TABLE accounts');
    await writeMigrations(dir, { '1000_accounts': accounts, '1500_sessions': sessions, '2000_index': INDEX, '3000_reshape': RESHAPE });
    await applyMigrations(t.targets.staging.url, dir, 1);
    await t.targets.staging.query(`INSERT INTO accounts SELECT g, 'u' || g || '@x', 'l' FROM generate_series(1, 100) g`);
    const { report } = await preflight('staging');
    const found = errors(report).map((f) => `${f.migration} ${f.rule}${/public\.sessions/.test(f.message) ? ' sessions' : ''}`);
    assert.ok(found.includes('2000_index require-concurrent-index-creation'), found.join('\n'));
    assert.equal(found.filter((f) => f.includes('sessions')).length, 0, `nothing about sessions, which this run creates:\n${found.join('\n')}`);
    assert.equal(found.includes('3000_reshape ban-drop-table'), false, 'dropping sessions loses nothing: the run created it');
    for (const rule of RESHAPE_RULES.filter((r) => r !== 'ban-drop-table')) assert.ok(found.includes(`3000_reshape ${rule}`), `${rule} in\n${found.join('\n')}`);
  });

  test('unqualified names resolve through the target\'s search_path; a same-named table the run creates elsewhere does not hide the one at risk', async () => {
    await apps.query(`
      CREATE SCHEMA app; CREATE TABLE app.t (x int); INSERT INTO app.t SELECT g FROM generate_series(1, 500) g; ANALYZE app.t;
      ALTER DATABASE ${apps.name} SET search_path = app, public;`);
    await writeMigrations(dir, {
      '1000_public-t': migration('CREATE TABLE public.t (x int)', 'DROP TABLE public.t'),
      '2000_index-t': migration('CREATE INDEX t_public_x ON public.t (x); CREATE INDEX t_x ON t (x)', 'DROP INDEX IF EXISTS t_x; DROP INDEX IF EXISTS public.t_x; DROP INDEX public.t_public_x'),
    });
    const { report } = await preflight('apps');
    const index = errors(report).filter((f) => f.rule === 'require-concurrent-index-creation');
    assert.equal(index.length, 1, JSON.stringify(report.findings, null, 2));
    assert.match(index[0]!.statement ?? '', /CREATE INDEX t_x ON t \(x\)/);
    assert.match(index[0]!.message, /existing table app\.t/);
  });
});

describe('transaction statements a JS migration sends itself', () => {
  test('BEGIN; and COMMIT; inside pgm.sql(...) are flagged, as separate calls and in one string', async () => {
    const own = "export const up = (pgm) => { pgm.sql('BEGIN;'); pgm.sql('CREATE TABLE a (id int)'); pgm.sql('COMMIT;'); };\nexport const down = (pgm) => { pgm.sql('DROP TABLE a'); };\n";
    const inline = migration('BEGIN; CREATE TABLE b (id int); COMMIT;', 'DROP TABLE b');
    const noTx = "export const up = (pgm) => { pgm.noTransaction(); pgm.sql('BEGIN'); pgm.sql('CREATE TABLE c (id int)'); };\nexport const down = (pgm) => { pgm.noTransaction(); pgm.sql('DROP TABLE c'); };\n";
    await writeMigrations(dir, { '1000_own-calls': own, '2000_one-string': inline, '3000_no-transaction': noTx });
    const { report } = await preflight('staging');
    const nesting = report.findings.filter((f) => ['transaction-nesting', 'ban-uncommitted-transaction'].includes(f.rule)).map((f) => `${f.migration} ${f.rule} ${f.statement}`);
    assert.ok(nesting.some((f) => /^1000_own-calls transaction-nesting BEGIN/.test(f)), nesting.join('\n'));
    assert.ok(nesting.some((f) => /^1000_own-calls transaction-nesting COMMIT/.test(f)), nesting.join('\n'));
    assert.ok(nesting.some((f) => /^2000_one-string transaction-nesting/.test(f)), nesting.join('\n'));
    assert.ok(nesting.some((f) => /^3000_no-transaction ban-uncommitted-transaction BEGIN/.test(f)), nesting.join('\n'));
  });
});
