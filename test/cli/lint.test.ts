// `sfm lint` as a user and CI run it: the built CLI as a child process, real
// files, a real PostgreSQL for --database-url and for rehearsing JS/TS files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { withDatabase } from '../../database/db.js';
import { RULE_IDS } from '../../services/preflight/sql-analysis/rule-catalog.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { adminQuery, adminUrl, createTestDatabase, type TestDatabase } from '../support/db.js';
import { sfm } from './helpers.js';

const UP = (sql: string) => `-- Up Migration\n${sql}\n-- Down Migration\nSELECT 1;\n`;

describe('sfm lint', () => {
  let dir: string;
  let target: TestDatabase;
  const write = (name: string, text: string) => writeFile(join(dir, name), text);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sfm-lint-test-'));
    target = await createTestDatabase('sfm_lint');
    await target.query(`
      CREATE TABLE users (id bigint PRIMARY KEY, email varchar(50), name text);
      INSERT INTO users SELECT g, 'e' || g, 'n' || g FROM generate_series(1, 100) g;
      CREATE TABLE pgmigrations (id serial PRIMARY KEY, name text NOT NULL, run_on timestamp NOT NULL);
      INSERT INTO pgmigrations (name, run_on) VALUES ('1700000000001_users', now());`);
    await write('1700000000001_users.sql', UP('CREATE TABLE users (id bigint PRIMARY KEY, email varchar(50), name text);'));
    await write('1700000000002_widen.sql', UP('ALTER TABLE users ALTER COLUMN email TYPE varchar(200);'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await target?.drop();
  });

  test('clean SQL exits 0; a finding exits 1 with file, line, rule and the fix', async () => {
    const clean = await sfm(undefined, ['lint', dir]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, /0 error\(s\), 0 warning\(s\) in 2 migration file\(s\) \(SQL read statically\)/);
    const bad = join(dir, 'bad');
    await rm(bad, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(bad));
    await writeFile(join(bad, '1700000000003_index.sql'), UP('SELECT 1;\nCREATE INDEX users_name_idx ON users (name);'));
    const r = await sfm(undefined, ['lint', join(bad, '1700000000003_index.sql')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /1700000000003_index\.sql:3: error require-concurrent-index-creation: .*JS\/TS migration of its own that calls pgm\.noTransaction\(\).*See docs\/rules\/require-concurrent-index-creation\.md\./);
  });

  test('warnings pass unless --strict; --rule changes a level', async () => {
    const file = join(dir, 'warn.sql');
    await writeFile(file, UP('ALTER TABLE users ALTER COLUMN email DROP NOT NULL;'));
    try {
      assert.equal((await sfm(undefined, ['lint', file])).code, 0);
      assert.equal((await sfm(undefined, ['lint', file, '--strict'])).code, 1);
      assert.equal((await sfm(undefined, ['lint', file, '--rule', 'ban-drop-not-null=error'])).code, 1);
      const off = await sfm(undefined, ['lint', file, '--strict', '--rule', 'ban-drop-not-null=off']);
      assert.equal(off.code, 0, off.stdout);
    } finally {
      await rm(file);
    }
  });

  test('usage errors exit 2', async () => {
    for (const args of [
      ['lint'],
      ['lint', join(dir, 'nope.sql')],
      ['lint', join(PROJECT_ROOT, 'package.json')],
      ['lint', dir, '--format', 'xml'],
      ['lint', dir, '--rule', 'no-such-rule=error'],
      ['lint', dir, '--rule', 'ban-drop-table=loud'],
    ]) {
      const r = await sfm(undefined, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  test('--database-url: applied migrations are skipped, the catalog informs the rules, and an unreachable database exits 3 without echoing the URL', async () => {
    await write('1700000000004_not_null.sql', UP('ALTER TABLE users ALTER COLUMN email TYPE varchar(10);'));
    try {
      const r = await sfm(undefined, ['lint', dir, '--format', 'json', '--database-url', target.url]);
      assert.equal(r.code, 1, r.stderr);
      const out = JSON.parse(r.stdout) as { method: string; files: string[]; findings: Array<{ rule: string; message: string }>; notes: string[] };
      assert.equal(out.method, 'static');
      assert.equal(out.files.length, 2, 'the applied one is skipped');
      assert.match(out.notes.join(' '), /Already applied on the database, not linted: 1700000000001_users/);
      // Widening needs no rewrite (known from the catalog); narrowing what the widening left does.
      assert.deepEqual(out.findings.map((f) => f.rule), ['changing-column-type']);
      assert.match(out.findings[0]!.message, /now character varying\(200\)/);
    } finally {
      await rm(join(dir, '1700000000004_not_null.sql'));
    }
    const secret = 'postgres://lint:s3cret-passw0rd@127.0.0.1:1/nowhere';
    const gone = await sfm(undefined, ['lint', dir, '--database-url', secret]);
    assert.equal(gone.code, 3, gone.stderr);
    assert.match(gone.stderr, /cannot reach the database/);
    assert.ok(!(gone.stdout + gone.stderr).includes('s3cret-passw0rd'));
  });

  test('a JS migration whose SQL is built at run time is linted from the SQL it sent on a throw-away copy', async () => {
    const js = join(dir, '1700000000005_builder.js');
    await writeFile(js, [
      'exports.up = (pgm) => {',
      "  const table = ['us', 'ers'].join('');",
      '  pgm.sql(`CREATE INDEX users_name_idx ON ${table} (name)`);',
      "  pgm.addColumn(table, { token: { type: 'uuid', default: pgm.func('gen_random_uuid()') } });",
      '};',
      'exports.down = () => {};',
    ].join('\n'));
    const databasesBefore = (await adminQuery("SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'sf_lint_%'")).rows[0].n;
    try {
      const r = await sfm(undefined, ['lint', dir, '--format', 'json'], { env: { SFM_LINT_DATABASE_URL: target.url } });
      assert.equal(r.code, 1, r.stderr);
      const out = JSON.parse(r.stdout) as { method: string; findings: Array<{ rule: string; path: string; line: number; statement: string }> };
      assert.equal(out.method, 'rehearsal');
      assert.deepEqual(out.findings.map((f) => [f.rule, f.path.endsWith('_builder.js'), f.line]), [
        ['require-concurrent-index-creation', true, 1],
        ['adding-field-with-volatile-default', true, 1],
      ]);
      assert.match(out.findings[0]!.statement, /CREATE INDEX users_name_idx ON users \(name\)/);
    } finally {
      await rm(js);
    }
    // The copy is gone and the target untouched.
    assert.equal((await adminQuery("SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'sf_lint_%'")).rows[0].n, databasesBefore);
    assert.equal((await target.query("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'users_name_idx'")).rows[0].n, 0);
    assert.equal((await target.query("SELECT count(*)::int AS n FROM information_schema.columns WHERE column_name = 'token'")).rows[0].n, 0);
  });

  test('with --database-url, a table an earlier file created is new in a later one, whatever the copy holds by then', async () => {
    const created = join(dir, '1700000000005_widgets.js');
    const later = join(dir, '1700000000006_index-widgets.js');
    await writeFile(created, "exports.up = (pgm) => { pgm.sql('CREATE TABLE widgets (id int, name text)'); };\nexports.down = () => {};\n");
    await writeFile(later, [
      'exports.up = (pgm) => {',
      "  pgm.sql('CREATE INDEX widgets_name_idx ON widgets (name)');",
      "  pgm.sql('CREATE INDEX users_name_idx ON users (name)');",
      "  pgm.sql('DROP TABLE widgets');",
      '};',
      'exports.down = () => {};',
    ].join('\n'));
    try {
      const r = await sfm(undefined, ['lint', dir, '--format', 'json', '--database-url', target.url]);
      assert.equal(r.code, 1, r.stderr);
      const out = JSON.parse(r.stdout) as { method: string; findings: Array<{ rule: string; statement: string; migration: string }> };
      assert.equal(out.method, 'rehearsal');
      const errors = out.findings.filter((f) => !f.rule.startsWith('prefer-'));
      assert.deepEqual(errors.map((f) => [f.migration, f.rule, f.statement]), [
        ['1700000000006_index-widgets', 'require-concurrent-index-creation', 'CREATE INDEX users_name_idx ON users (name)'],
      ], 'only the table the database already has');
    } finally {
      await rm(created);
      await rm(later);
    }
  });

  test('with --database-url, what static analysis cannot see is flagged from what the rehearsal observed', async () => {
    const js = join(dir, '1700000000005_dynamic.js');
    await writeFile(js, [
      'exports.up = (pgm) => {',
      "  pgm.sql(\"DO $$ BEGIN EXECUTE format('ALTER TABLE %I ALTER COLUMN name TYPE varchar(10)', 'users'); END $$\");",
      '};',
      'exports.down = () => {};',
    ].join('\n'));
    try {
      const r = await sfm(undefined, ['lint', dir, '--database-url', target.url]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /1700000000005_dynamic\.js:1: error observed-table-rewrite: Migration 1700000000005_dynamic rewrote public\.users \((about 100 rows|\d+ kB of data) on the target\): a column type changed/);
      assert.match(r.stdout, /note: Observed effects: event-triggers\./);
    } finally {
      await rm(js);
    }
  });

  test('--format sarif validates against the SARIF 2.1.0 schema and carries rules, locations and suppressions', async () => {
    const file = join(dir, '1700000000006_drop.sql');
    await writeFile(file, UP('-- lint-ack: ban-drop-column unused since release 41\nALTER TABLE users DROP COLUMN name;\nALTER TABLE users RENAME COLUMN email TO mail;'));
    try {
      const r = await sfm(undefined, ['lint', file, '--format', 'sarif']);
      assert.equal(r.code, 1, r.stderr);
      const log = JSON.parse(r.stdout) as { runs: Array<{ tool: { driver: { rules: Array<{ id: string; help?: { markdown: string } }> } }; results: Array<Record<string, any>> }> };
      const schema = JSON.parse(await readFile(join(PROJECT_ROOT, 'test/fixtures/sarif-2.1.0.schema.json'), 'utf8')) as object;
      const ajv = new Ajv2020({ strict: false, allErrors: true });
      addFormats.default(ajv);
      const validate = ajv.compile(schema);
      assert.ok(validate(log), JSON.stringify(validate.errors, null, 2));
      const run = log.runs[0]!;
      assert.deepEqual(run.tool.driver.rules.map((r) => r.id).slice(0, RULE_IDS.length), [...RULE_IDS]);
      assert.ok(run.tool.driver.rules.find((r) => r.id === 'ban-drop-column')?.help?.markdown.includes('## Bad'));
      const byRule = new Map(run.results.map((res) => [res.ruleId as string, res]));
      const drop = byRule.get('ban-drop-column')!;
      assert.deepEqual(drop.suppressions, [{ kind: 'inSource', justification: 'unused since release 41' }]);
      const rename = byRule.get('renaming-column')!;
      assert.equal(rename.level, 'error');
      assert.equal(rename.locations[0].physicalLocation.region.startLine, 4);
      assert.ok(!String(rename.locations[0].physicalLocation.artifactLocation.uri).startsWith('/'), 'a path relative to the checkout');
    } finally {
      await rm(file);
    }
  });

  test('without --database-url a JS file is rehearsed on an embedded PostgreSQL', { skip: process.env.SFM_LINT_SKIP_EMBEDDED === '1' }, async () => {
    const only = await mkdtemp(join(tmpdir(), 'sfm-lint-embedded-'));
    try {
      await writeFile(join(only, '1700000000001_t.js'), "exports.up = (pgm) => { pgm.sql('CREATE TABLE t (id int)'); pgm.sql('CREATE INDEX t_id_idx ON t (id)'); };\n");
      const r = await sfm(undefined, ['lint', only, '--format', 'json']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal((JSON.parse(r.stdout) as { method: string }).method, 'rehearsal');
    } finally {
      await rm(only, { recursive: true, force: true });
    }
  });

  test('adminUrl is a server the tests may create databases on', () => assert.ok(withDatabase(adminUrl(), 'x')));
});
