import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { readSchemaFacts } from '../../services/preflight/catalog-facts.js';
import { lintMigration, type LintFinding } from '../../services/preflight/sql-analysis/index.js';
import type { SchemaFacts } from '../../services/preflight/sql-analysis/schema-facts.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

// The facts the linter reads from a real catalog, and the false errors they
// remove: a validated NOT NULL check from an earlier migration, a widening
// type change, a default calling a user function that is IMMUTABLE.

describe('catalog facts from a real database', () => {
  let db: TestDatabase;
  let facts: SchemaFacts;
  const existing = new Set(['public.accounts']);
  const lint = (sql: string): Promise<LintFinding[]> =>
    lintMigration({ migration: 'm', statements: [sql], transactional: true, existingTables: existing, source: '', facts });

  before(async () => {
    db = await createTestDatabase('lint_catalog');
    await db.query(`
      CREATE TABLE accounts (id bigint, name varchar(50), price numeric(10,2), email text, code text);
      INSERT INTO accounts SELECT g, 'n' || g, g, 'e' || g, 'c' FROM generate_series(1, 100) g;
      ALTER TABLE accounts ADD CONSTRAINT accounts_email_not_null CHECK (email IS NOT NULL) NOT VALID;
      ALTER TABLE accounts VALIDATE CONSTRAINT accounts_email_not_null;
      ALTER TABLE accounts ADD CONSTRAINT "Accounts_Code_NN" CHECK (code IS NOT NULL) NOT VALID;
      CREATE FUNCTION make_code() RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT 'x' $$;
      CREATE FUNCTION next_code() RETURNS text VOLATILE LANGUAGE sql AS $$ SELECT 'y' $$;
      CREATE MATERIALIZED VIEW account_totals AS SELECT count(*) AS n FROM accounts;`);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      facts = await readSchemaFacts(client);
    } finally {
      await client.end();
    }
  });
  after(async () => db?.drop());

  test('reads column types, NOT NULL checks (validated or not), volatility and materialized views', () => {
    assert.equal(facts.columnTypes.get('public.accounts.name'), 'character varying(50)');
    assert.equal(facts.columnTypes.get('public.accounts.price'), 'numeric(10,2)');
    assert.deepEqual(facts.notNullChecks.get('public.accounts/accounts_email_not_null'), { column: 'email', validated: true });
    assert.deepEqual(facts.notNullChecks.get('public.accounts/accounts_code_nn'), { column: 'code', validated: false });
    assert.equal(facts.functions.get('make_code'), 'immutable');
    assert.equal(facts.functions.get('public.next_code'), 'volatile');
    assert.equal(facts.functions.get('now'), 'stable');
    assert.ok(facts.materializedViews.has('public.account_totals'));
  });

  test('what PostgreSQL does without a scan or rewrite is not flagged', async () => {
    for (const sql of [
      'ALTER TABLE accounts ALTER COLUMN email SET NOT NULL',
      'ALTER TABLE accounts ALTER COLUMN name TYPE varchar(120)',
      'ALTER TABLE accounts ALTER COLUMN name TYPE text',
      'ALTER TABLE accounts ALTER COLUMN price TYPE numeric(16,2)',
      'ALTER TABLE accounts ADD COLUMN slug text DEFAULT make_code()',
    ]) assert.deepEqual(await lint(sql), [], sql);
  });

  test('and PostgreSQL agrees: none of them rewrote the table (same relfilenode), SET NOT NULL used the check', async () => {
    const before = (await db.query("SELECT pg_relation_filenode('accounts') AS f")).rows[0].f;
    await db.query(`
      ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;
      ALTER TABLE accounts ALTER COLUMN name TYPE varchar(120);
      ALTER TABLE accounts ALTER COLUMN name TYPE text;
      ALTER TABLE accounts ALTER COLUMN price TYPE numeric(16,2);
      ALTER TABLE accounts ADD COLUMN slug text DEFAULT make_code();`);
    assert.equal((await db.query("SELECT pg_relation_filenode('accounts') AS f")).rows[0].f, before);
  });

  test('what still scans or rewrites is flagged', async () => {
    const cases: Array<[string, string]> = [
      ['ALTER TABLE accounts ALTER COLUMN code SET NOT NULL', 'adding-not-nullable-field'],
      ['ALTER TABLE accounts ALTER COLUMN price TYPE numeric(16,4)', 'changing-column-type'],
      ['ALTER TABLE accounts ADD COLUMN tag text DEFAULT next_code()', 'adding-field-with-volatile-default'],
      ['CREATE INDEX account_totals_n_idx ON account_totals (n)', 'require-concurrent-index-creation'],
    ];
    for (const [sql, rule] of cases) assert.deepEqual((await lint(sql)).map((f) => f.rule), [rule], sql);
  });
});
