// Reversibility by schema diff (issue 16, item 5) and everything reported at
// once (item 6): each down is compared with the schema from before its up,
// and after a failed migration the ones the rehearsal never reached are still
// read and linted.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { cancelActiveRuns, dirMigrationConfig, bearer, startTestApp, type TestApp } from '../support/app.js';
import { applyMigrations, migrationSource as migration, writeMigrations as writeFiles } from '../support/migrations.js';

let t: TestApp;
let dir: string;

const writeMigrations = (files: Record<string, string>) => writeFiles(dir, files);
const emptyDown = (up: string) => `export const up = (pgm) => { pgm.sql(${JSON.stringify(up)}); };\nexport const down = () => {};\n`;

type Finding = { rule: string; severity: string; migration: string | null; message: string };
type Report = {
  findings: Finding[];
  checks: Array<{ id: string; status: string; detail: string }>;
  notes: string[];
  rehearsal: {
    steps: Array<{ phase: string; migration: string; ok: boolean }>;
    reversibility: Record<string, string>;
    downDiffs: Record<string, { leaves: string[]; removes: string[]; changes: string[] }>;
    notRehearsed: string[];
    staticStatements: Record<string, { statements: string[]; complete: boolean }>;
  };
};

async function createRun(environment = 'staging'): Promise<{ run: { id: string; status: string; error: { code: string } | null }; report: Report }> {
  const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment, description: 'reversibility' });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  const run = (await t.http().get(`/v1/runs/${res.body.id}`).set('authorization', bearer('vic'))).body;
  const report = (await t.http().get(`/v1/runs/${run.id}/preflight`).set('authorization', bearer('vic'))).body.report;
  return { run, report };
}

const cancel = (id: string) => t.http().post(`/v1/runs/${id}/cancel`).set('authorization', bearer('olga')).send({});
const of = (report: Report, rule: string, migration?: string) => report.findings.filter((f) => f.rule === rule && (migration === undefined || f.migration === migration));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-h16-reversibility-'));
  const config = dirMigrationConfig(dir);
  t = await startTestApp({ label: 'h16_reversibility', migrationConfigSource: config });
});

after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await cancelActiveRuns(t);
  for (const db of [t.targets.staging, t.targets.production]) {
    await db.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;');
  }
});

describe('reversibility by schema diff', () => {
  test('an empty down and a partial down are named with what they leave; a correct down is reversible', async () => {
    await writeMigrations({
      '1000_accounts': migration('CREATE TABLE accounts (id int PRIMARY KEY)', 'DROP TABLE accounts'),
      // Its down drops the table it made, not the index on accounts nor the type.
      '2000_audit': migration(
        "CREATE TABLE audit (id int); CREATE INDEX accounts_id_idx ON accounts (id); CREATE TYPE audit_kind AS ENUM ('login')",
        'DROP TABLE audit',
        { comment: '// lint-ack: require-concurrent-index-creation accounts is created by this run' },
      ),
      '3000_audit-log': emptyDown('CREATE TABLE audit_log (id bigint PRIMARY KEY, at timestamptz NOT NULL)'),
    });
    const { run, report } = await createRun();
    assert.deepEqual(report.rehearsal.reversibility, { '1000_accounts': 'reversible', '2000_audit': 'irreversible', '3000_audit-log': 'irreversible' });
    assert.deepEqual(report.rehearsal.downDiffs['3000_audit-log'], { leaves: ['table public.audit_log'], removes: [], changes: [] }, 'its columns and key fold into the table');
    assert.deepEqual(report.rehearsal.downDiffs['2000_audit'], { leaves: ['enum public.audit_kind', 'index public.accounts_id_idx'], removes: [], changes: [] }, 'not what 3000 left');
    const [empty] = of(report, 'irreversible-down', '3000_audit-log');
    assert.equal(empty!.severity, 'warning', 'a warning outside production');
    assert.match(empty!.message, /does not restore the schema its up found: it leaves table public\.audit_log\./);
    assert.match(empty!.message, /mode "restore"/);
    const [partial] = of(report, 'irreversible-down', '2000_audit');
    assert.match(partial!.message, /leaves enum public\.audit_kind, index public\.accounts_id_idx/);
    // The second up of 2000 then fails on the type its down left: part of that finding, not a failure of its own.
    assert.match(partial!.message, /Re-applying it then failed: type "audit_kind" already exists/);
    assert.deepEqual(of(report, 'rehearsal-reapply-failed'), []);
    assert.equal(of(report, 'irreversible-down', '1000_accounts').length, 0);
    assert.equal(report.checks.find((c) => c.id === 'rehearsal')!.status, 'warn');
    assert.equal(run.status, 'awaiting_approval', JSON.stringify(report.findings));
  });

  test('a down that forgets a cast, a grant or a foreign server is irreversible and names them; no option value in the words', async () => {
    const password = 'archive-pw-4ac1d9';
    await writeMigrations({
      '1000_notes': migration("CREATE TABLE notes (id int); CREATE TYPE note_kind AS ENUM ('memo')", 'DROP TABLE notes; DROP TYPE note_kind CASCADE'),
      // Its down takes back the comment only.
      '2000_cast-and-grant': migration("CREATE CAST (text AS note_kind) WITH INOUT; GRANT SELECT ON notes TO PUBLIC; COMMENT ON TABLE notes IS 'memos'", 'COMMENT ON TABLE notes IS NULL'),
      '3000_archive-server': emptyDown(`CREATE FOREIGN DATA WRAPPER notes_fdw; CREATE SERVER notes_archive FOREIGN DATA WRAPPER notes_fdw OPTIONS (host 'archive', password '${password}')`),
    });
    const { run, report } = await createRun();
    assert.deepEqual(report.rehearsal.reversibility, { '1000_notes': 'reversible', '2000_cast-and-grant': 'irreversible', '3000_archive-server': 'irreversible' });
    assert.deepEqual(report.rehearsal.downDiffs['2000_cast-and-grant'], { leaves: ['cast (text AS public.note_kind)'], removes: [], changes: ['privileges on table public.notes'] });
    assert.deepEqual(report.rehearsal.downDiffs['3000_archive-server'], { leaves: ['foreign-data wrapper notes_fdw', 'server notes_archive'], removes: [], changes: [] });
    const [castAndGrant] = of(report, 'irreversible-down', '2000_cast-and-grant');
    assert.match(castAndGrant!.message, /does not restore the schema its up found: it leaves cast \(text AS public\.note_kind\); changes privileges on table public\.notes\./);
    const [server] = of(report, 'irreversible-down', '3000_archive-server');
    assert.match(server!.message, /it leaves foreign-data wrapper notes_fdw, server notes_archive\./);
    assert.ok(!JSON.stringify([report.findings.map((f) => f.message), report.rehearsal.downDiffs]).includes(password), 'the password is not in the findings');
    assert.equal(run.status, 'awaiting_approval', JSON.stringify(report.findings));
  });

  test('in production an irreversible down is an error', async () => {
    await writeMigrations({ '1000_audit-log': emptyDown('CREATE TABLE audit_log (id int)') });
    const { run, report } = await createRun('production');
    assert.equal(run.status, 'preflight_failed');
    assert.equal(run.error!.code, 'irreversible-down');
    assert.equal(of(report, 'irreversible-down')[0]!.severity, 'error');
  });

  test('a migration node-pg-migrate will not run down (down = false, a .sql file without a Down section) is no-down', async () => {
    await writeMigrations({ '1000_frozen': `export const up = (pgm) => { pgm.sql('CREATE TABLE frozen (id int)'); };\nexport const down = false;\n` });
    await writeFile(join(dir, '2000_plain.sql'), 'CREATE TABLE plain (id int);\n');
    const { report } = await createRun();
    // The down phase cannot pass 2000; 1000 is never reverted.
    assert.deepEqual(report.rehearsal.reversibility, { '1000_frozen': 'not-checked', '2000_plain': 'no-down' });
    assert.match(of(report, 'irreversible-down', '2000_plain')[0]!.message, /has no down migration node-pg-migrate will run \(User has disabled down migration/);
    assert.deepEqual(of(report, 'rehearsal-down-failed'), [], 'not a rehearsal failure: the finding says it');
    assert.ok(report.notes.some((n) => /Reversibility not checked .*1000_frozen/.test(n)), report.notes.join('\n'));
    await cancel((await t.control.query(`SELECT id FROM runs WHERE status = 'awaiting_approval'`)).rows[0].id);

    await writeMigrations({ '1000_frozen': `export const up = (pgm) => { pgm.sql('CREATE TABLE frozen (id int)'); };\nexport const down = false;\n` });
    const frozen = await createRun();
    assert.deepEqual(frozen.report.rehearsal.reversibility, { '1000_frozen': 'no-down' });
  });
});

describe('after a failure, the rest is still read and linted', () => {
  test('a failing up does not hide a failing down of a migration before it: both are in the one report', async () => {
    await writeMigrations({
      '1000_accounts': migration('CREATE TABLE accounts (id int)', 'DROP TABLE no_such_table'),
      '2000_broken': migration('SELECT 1 / 0'),
    });
    const { report } = await createRun();
    assert.deepEqual(report.findings.filter((f) => f.rule.startsWith('rehearsal-') && f.severity === 'error').map((f) => [f.rule, f.migration]),
      [['rehearsal-failed', '2000_broken'], ['rehearsal-down-failed', '1000_accounts']]);
  });


  test('migration 2 of 5 fails: 3 to 5 are linted from their files (SQL, CommonJS, TypeScript) and listed as not rehearsed', async () => {
    await writeMigrations({ '0100_accounts': migration('CREATE TABLE accounts (id int PRIMARY KEY, email text, legacy text)', 'DROP TABLE accounts') });
    await applyMigrations(t.targets.staging.url, dir, 1);
    await writeMigrations({
      '0100_accounts': migration('CREATE TABLE accounts (id int PRIMARY KEY, email text, legacy text)', 'DROP TABLE accounts'),
      '1000_notes': migration('CREATE TABLE notes (id int)', 'DROP TABLE notes'),
      '2000_broken': migration('SELECT 1 / 0'),
    });
    await writeFile(join(dir, '3000_index-email.sql'), '-- Up Migration\nCREATE INDEX accounts_email ON accounts (email);\nCREATE TABLE labels (id int);\n-- Down Migration\nDROP TABLE labels;\nDROP INDEX accounts_email;\n');
    await writeFile(join(dir, '4000_drop-legacy.js'), [
      'exports.up = (pgm) => {',
      "  pgm.sql('CREATE INDEX labels_id ON labels (id)');",
      "  pgm.sql('ALTER TABLE accounts DROP COLUMN legacy');",
      '};',
      "exports.down = (pgm) => { pgm.sql('ALTER TABLE accounts ADD COLUMN legacy text'); };",
      '',
    ].join('\n'));
    await writeFile(join(dir, '5000_widen-id.ts'), [
      'export async function up(pgm: { sql(text: string): void }): Promise<void> {',
      '  pgm.sql(`ALTER TABLE accounts ALTER COLUMN id TYPE bigint`);',
      '}',
      'export async function down(pgm: { sql(text: string): void }): Promise<void> {',
      "  pgm.sql('ALTER TABLE accounts ALTER COLUMN id TYPE int');",
      '}',
      '',
    ].join('\n'));
    const { run, report } = await createRun();
    assert.equal(run.status, 'preflight_failed');
    assert.deepEqual(report.rehearsal.notRehearsed, ['3000_index-email', '4000_drop-legacy', '5000_widen-id']);
    assert.deepEqual(report.rehearsal.staticStatements['4000_drop-legacy'], {
      statements: ['CREATE INDEX labels_id ON labels (id)', 'ALTER TABLE accounts DROP COLUMN legacy'], transactional: true, complete: true,
    });
    assert.equal(of(report, 'rehearsal-failed', '2000_broken').length, 1);
    assert.equal(of(report, 'require-concurrent-index-creation', '3000_index-email').length, 1, JSON.stringify(report.findings));
    assert.equal(of(report, 'ban-drop-column', '4000_drop-legacy').length, 1);
    assert.equal(of(report, 'changing-column-type', '5000_widen-id').length, 1);
    const detail = report.checks.find((c) => c.id === 'rehearsal')!.detail;
    assert.match(detail, /^up 1\/5 \(stopped at 2000_broken: failed\), down 1\/1, up again 1\/1;/, 'the one that went up was still checked down and up again');
    assert.match(detail, /not rehearsed: 3/);
    assert.doesNotMatch(detail, /\d+\/\d+ steps/);
    assert.ok(report.notes.some((n) => n.startsWith('Not rehearsed, the rehearsal stopped at 2000_broken: 3000_index-email, 4000_drop-legacy, 5000_widen-id.')), report.notes.join('\n'));
  });
});
