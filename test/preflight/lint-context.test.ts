import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lintMigration, type LintFinding, type LintInput } from '../../services/preflight/sql-analysis/index.js';
import { lintMigrationDetailed } from '../../services/preflight/sql-analysis/lint.js';
import { RULE_CATALOG, RULE_IDS } from '../../services/preflight/sql-analysis/rule-catalog.js';
import { emptyFacts, notNullCheckColumn, type SchemaFacts } from '../../services/preflight/sql-analysis/schema-facts.js';
import { PROJECT_ROOT } from '../../database/paths.js';

// What the linter knows beyond the statement text: catalog facts (column
// types, NOT NULL checks, function volatility), the file type, the search_path
// the migration sets, and the SQL inside DO blocks and EXECUTE strings.

const EXISTING: ReadonlySet<string> = new Set(['public.users', 'public.orders', 'app.accounts']);

function facts(partial: Partial<SchemaFacts>): SchemaFacts {
  return { ...emptyFacts(), ...partial };
}

function lint(statements: string | string[], options: Partial<LintInput> = {}): Promise<LintFinding[]> {
  return lintMigration({
    migration: '1700000001100_context',
    statements: Array.isArray(statements) ? statements : [statements],
    transactional: true,
    existingTables: EXISTING,
    source: '',
    ...options,
  });
}

const rules = (findings: LintFinding[]) => findings.map((f) => f.rule);

describe('SET NOT NULL after a validated CHECK (col IS NOT NULL)', () => {
  const validated = facts({ notNullChecks: new Map([['public.users/users_email_not_null', { column: 'email', validated: true }]]) });
  const notValidated = facts({ notNullChecks: new Map([['public.users/users_email_not_null', { column: 'email', validated: false }]]) });

  test('validated in an earlier migration (catalog): no scan on PostgreSQL 12+, so no finding', async () => {
    assert.deepEqual(await lint(['ALTER TABLE users ALTER COLUMN email SET NOT NULL', 'ALTER TABLE users DROP CONSTRAINT users_email_not_null'], { facts: validated }), []);
  });

  test('not validated yet, another column, or PostgreSQL 11: still flagged', async () => {
    assert.deepEqual(rules(await lint('ALTER TABLE users ALTER COLUMN email SET NOT NULL', { facts: notValidated })), ['adding-not-nullable-field']);
    assert.deepEqual(rules(await lint('ALTER TABLE users ALTER COLUMN name SET NOT NULL', { facts: validated })), ['adding-not-nullable-field']);
    const old = (await lint('ALTER TABLE users ALTER COLUMN email SET NOT NULL', { facts: validated, serverMajor: 11 }))[0];
    assert.match(old?.message ?? '', /PostgreSQL 11 cannot skip the scan/);
  });

  test('VALIDATE of the catalog\'s NOT VALID check earlier in the migration makes SET NOT NULL safe', async () => {
    assert.deepEqual(await lint(['ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null', 'ALTER TABLE users ALTER COLUMN email SET NOT NULL'], { facts: notValidated }), []);
  });

  test('the recipe the message gives, followed across three migrations, ends without a finding', async () => {
    const [message] = (await lint('ALTER TABLE users ALTER COLUMN email SET NOT NULL')).map((f) => f.message);
    const steps = [...(message ?? '').matchAll(/\(\d\) ([^;]+?)(?:;|\s\(SHARE)/g)].map((m) => m[1]!);
    assert.match(steps[0]!, /^ADD CONSTRAINT users_email_not_null CHECK \(email IS NOT NULL\) NOT VALID$/);
    const one = await lintMigrationDetailed({ migration: 'm1', statements: [`ALTER TABLE users ${steps[0]}`], transactional: true, existingTables: EXISTING, source: '', facts: emptyFacts() });
    assert.deepEqual(one.findings, []);
    const two = await lintMigrationDetailed({ migration: 'm2', statements: ['ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null'], transactional: true, existingTables: one.tablesAfter, source: '', facts: one.factsAfter });
    assert.deepEqual(two.findings, []);
    const three = await lintMigration({
      migration: 'm3', transactional: true, existingTables: two.tablesAfter, source: '', facts: two.factsAfter,
      statements: ['ALTER TABLE users ALTER COLUMN email SET NOT NULL', 'ALTER TABLE users DROP CONSTRAINT users_email_not_null'],
    });
    assert.deepEqual(three, []);
  });

  test('pg_get_constraintdef() forms are recognised', () => {
    assert.equal(notNullCheckColumn('CHECK ((email IS NOT NULL))'), 'email');
    assert.equal(notNullCheckColumn('CHECK (("Email" IS NOT NULL)) NOT VALID'), 'email');
    assert.equal(notNullCheckColumn('CHECK ((length(email) > 0))'), undefined);
  });
});

describe('ALTER COLUMN TYPE: no rewrite, no finding', () => {
  const types = facts({
    columnTypes: new Map([
      ['public.users.name', 'character varying(50)'],
      ['public.users.price', 'numeric(10,2)'],
      ['public.users.id', 'integer'],
      ['public.users.code', 'character(4)'],
    ]),
  });
  for (const sql of [
    'ALTER TABLE users ALTER COLUMN name TYPE varchar(200)',
    'ALTER TABLE users ALTER COLUMN name TYPE varchar',
    'ALTER TABLE users ALTER COLUMN name TYPE text',
    'ALTER TABLE users ALTER COLUMN name TYPE text USING name::text',
    'ALTER TABLE users ALTER COLUMN price TYPE numeric(14,2)',
    'ALTER TABLE users ALTER COLUMN price TYPE numeric',
  ]) {
    test(`quiet: ${sql}`, async () => assert.deepEqual(await lint(sql, { facts: types }), []));
  }
  for (const sql of [
    'ALTER TABLE users ALTER COLUMN name TYPE varchar(20)',
    'ALTER TABLE users ALTER COLUMN price TYPE numeric(14,4)',
    'ALTER TABLE users ALTER COLUMN id TYPE bigint',
    'ALTER TABLE users ALTER COLUMN code TYPE text',
    "ALTER TABLE users ALTER COLUMN name TYPE text USING name || ''",
  ]) {
    test(`flagged: ${sql}`, async () => {
      const [finding] = await lint(sql, { facts: types });
      assert.equal(finding?.rule, 'changing-column-type');
      assert.match(finding.message, /\(now /);
    });
  }

  test('without the current type the finding says how to tell', async () => {
    const [finding] = await lint('ALTER TABLE users ALTER COLUMN name TYPE text');
    assert.match(finding?.message ?? '', /does not know the column's current type.*sfm lint --database-url/);
  });

  test('a type set earlier in the migration counts: varchar(255) then text flags only the first change', async () => {
    const findings = await lint(['ALTER TABLE users ALTER COLUMN bio TYPE varchar(255)', 'ALTER TABLE users ALTER COLUMN bio TYPE text']);
    assert.deepEqual(findings.map((f) => f.statement), ['ALTER TABLE users ALTER COLUMN bio TYPE varchar(255)']);
  });
});

describe('default volatility from the catalog and the migration\'s own functions', () => {
  test('a function the catalog says is stable or immutable is fine; volatile is not', async () => {
    const lookup = facts({ functions: new Map([['make_slug', 'immutable'], ['app.next_code', 'volatile']]) });
    assert.deepEqual(await lint('ALTER TABLE users ADD COLUMN slug text DEFAULT make_slug()', { facts: lookup }), []);
    const [finding] = await lint('ALTER TABLE users ADD COLUMN code text DEFAULT app.next_code()', { facts: lookup });
    assert.match(finding?.message ?? '', /app\.next_code\(\), which is volatile/);
  });

  test('CREATE FUNCTION ... STABLE earlier in the migration counts', async () => {
    assert.deepEqual(await lint([
      "CREATE FUNCTION default_region() RETURNS text STABLE LANGUAGE sql AS $$ SELECT 'eu' $$",
      'ALTER TABLE users ADD COLUMN region text DEFAULT default_region()',
    ]), []);
  });

  test('identity columns get identity advice, never "then SET DEFAULT"', async () => {
    const [finding] = await lint('ALTER TABLE users ADD COLUMN seq bigint GENERATED BY DEFAULT AS IDENTITY');
    assert.equal(finding?.rule, 'adding-field-with-volatile-default');
    assert.match(finding.message, /ADD GENERATED BY DEFAULT AS IDENTITY \(no rewrite\).*setval\(\)/);
    assert.doesNotMatch(finding.message, /SET DEFAULT/);
  });
});

describe('advice fits the file type', () => {
  test('.sql migrations are never told to call pgm.noTransaction() in themselves', async () => {
    for (const sql of ['CREATE INDEX users_email_idx ON users (email)', 'CREATE INDEX CONCURRENTLY users_email_idx ON users (email)', 'DROP INDEX users_email_idx']) {
      const [finding] = await lint(sql, { file: '1700000001100_context.sql' });
      assert.match(finding?.message ?? '', /JS\/TS migration of its own that calls pgm\.noTransaction\(\)/, sql);
      assert.doesNotMatch(finding!.message, /call pgm\.noTransaction\(\) in this migration|in a migration that calls/);
    }
    const [nesting] = await lint(['BEGIN', 'ALTER TABLE users ADD COLUMN a int', 'COMMIT'], { file: 'x.sql' });
    assert.match(nesting?.message ?? '', /^A \.sql migration always runs inside node-pg-migrate's transaction/);
  });
});

describe('search_path', () => {
  test('after SET search_path, unqualified names resolve to the first schema that has them', async () => {
    const findings = await lint(['SET search_path TO app, public', 'CREATE INDEX accounts_email_idx ON accounts (email)', 'ALTER TABLE users DROP COLUMN legacy']);
    assert.deepEqual(findings.map((f) => [f.rule, /app\.accounts|public\.users/.exec(f.message)?.[0]]), [
      ['require-concurrent-index-creation', 'app.accounts'],
      ['ban-drop-column', 'public.users'],
    ]);
    // Without it, accounts means public.accounts, which does not exist.
    assert.deepEqual(await lint('CREATE INDEX accounts_email_idx ON accounts (email)'), []);
  });

  test('set_config(\'search_path\', ...) and SET LOCAL work too; RESET goes back to public', async () => {
    const index = 'CREATE INDEX accounts_email_idx ON accounts (email)';
    assert.deepEqual(rules(await lint(["SELECT set_config('search_path', 'app', true)", index])), ['require-concurrent-index-creation']);
    assert.deepEqual(rules(await lint(["SET LOCAL search_path = 'app'", index])), ['require-concurrent-index-creation']);
    assert.deepEqual(rules(await lint(["SET LOCAL search_path = 'app'", 'RESET search_path', index])), []);
  });
});

describe('DO blocks and EXECUTE of literals', () => {
  test('statements inside a DO block are checked like top-level ones', async () => {
    const findings = await lint(`DO $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'users_email_idx') THEN
          CREATE INDEX users_email_idx ON users (email);
        END IF;
        EXECUTE 'ALTER TABLE orders ALTER COLUMN total TYPE ' || 'numeric(12,2)';
        EXECUTE format('ALTER TABLE %I DROP COLUMN legacy', 'users');
      END $$`);
    assert.deepEqual(findings.map((f) => [f.rule, f.statement]), [
      ['require-concurrent-index-creation', 'CREATE INDEX users_email_idx ON users (email)'],
      ['changing-column-type', 'ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2)'],
    ]);
    assert.match(findings[0]!.message, /^Inside a DO block: .*as a statement of its own, outside the DO block/);
    assert.match(findings[1]!.message, /^Inside a DO block, in an EXECUTEd string: /);
  });

  test('CONCURRENTLY inside a DO block fails, even in a noTransaction migration', async () => {
    const [finding] = await lint("DO $$ BEGIN EXECUTE 'CREATE INDEX CONCURRENTLY i ON users (a)'; END $$", { transactional: false });
    assert.equal(finding?.rule, 'ban-concurrent-index-creation-in-transaction');
    assert.match(finding.message, /inside a DO block fails.*a DO block runs as one transaction/);
  });

  test('a table the DO block creates is new for the rest of the migration', async () => {
    assert.deepEqual(await lint(["DO $$ BEGIN EXECUTE 'CREATE TABLE fresh (id int)'; END $$", 'CREATE INDEX fresh_id_idx ON fresh (id)']), []);
  });
});

describe('rule pages', () => {
  const dir = join(PROJECT_ROOT, 'docs/rules');

  test('every rule has a page with why, lock, a bad and a good example; every page belongs to a rule', async () => {
    const pages = (await readdir(dir)).filter((f) => f.endsWith('.md') && f !== 'README.md').map((f) => f.replace(/\.md$/, ''));
    assert.deepEqual([...pages].sort(), [...RULE_IDS].sort());
    for (const id of RULE_IDS) {
      const page = await readFile(join(dir, `${id}.md`), 'utf8');
      for (const section of ['## Why', '## Lock', '## Bad', '## Good']) assert.ok(page.includes(section), `${id}.md lacks ${section}`);
      assert.ok(page.startsWith(`# \`${id}\``), `${id}.md has another title`);
    }
  });

  test('the index links every page with its default level', async () => {
    const index = await readFile(join(dir, 'README.md'), 'utf8');
    for (const [id, info] of Object.entries(RULE_CATALOG)) assert.ok(index.includes(`| [${id}](${id}.md) | ${info.defaultLevel} |`), id);
  });
});
