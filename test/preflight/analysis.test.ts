import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeStatements, createdExtensions, type StatementImpact } from '../../services/preflight/sql-analysis/index.js';

type Expected = Omit<StatementImpact, 'statement' | 'kind'> & { kind?: string };

const none = { rewritesTable: false, buildsIndex: false, scansTable: false };

// Lock modes per the PostgreSQL 15 docs (explicit locking, ALTER TABLE).
const CASES: Array<[string, Expected]> = [
  ['CREATE INDEX users_email_idx ON users (email)', { kind: 'IndexStmt', tables: ['public.users'], lock: 'SHARE', ...none, buildsIndex: true }],
  ['CREATE UNIQUE INDEX CONCURRENTLY i ON billing.invoices (number)', { tables: ['billing.invoices'], lock: 'SHARE UPDATE EXCLUSIVE', ...none, buildsIndex: true }],
  ['DROP INDEX users_email_idx', { kind: 'DropStmt', tables: ['public.users_email_idx'], lock: 'ACCESS EXCLUSIVE', ...none }],
  ['ALTER TABLE users ADD COLUMN power integer', { kind: 'AlterTableStmt', tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none }],
  ['ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()', { tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none }],
  ['ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()', { tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none, rewritesTable: true }],
  ['ALTER TABLE users ALTER COLUMN id TYPE bigint', { tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none, rewritesTable: true }],
  ['ALTER TABLE users ALTER COLUMN email SET NOT NULL', { tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none, scansTable: true }],
  [
    'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)',
    { tables: ['public.orders', 'public.users'], lock: 'SHARE ROW EXCLUSIVE', ...none, scansTable: true },
  ],
  [
    'ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID',
    { tables: ['public.orders', 'public.users'], lock: 'SHARE ROW EXCLUSIVE', ...none },
  ],
  ['ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk', { tables: ['public.orders'], lock: 'SHARE UPDATE EXCLUSIVE', ...none, scansTable: true }],
  ['ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0)', { tables: ['public.orders'], lock: 'ACCESS EXCLUSIVE', ...none, scansTable: true }],
  ['ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)', { tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none, buildsIndex: true }],
  ['ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx', { tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none }],
  ['ALTER TABLE users SET TABLESPACE fast', { tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none, rewritesTable: true }],
  ['ALTER TABLE users SET LOGGED', { tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none, rewritesTable: true }],
  ['ALTER TABLE users ENABLE TRIGGER audit', { tables: ['public.users'], lock: 'SHARE ROW EXCLUSIVE', ...none }],
  ['UPDATE users SET power = 0', { kind: 'UpdateStmt', tables: ['public.users'], lock: 'ROW EXCLUSIVE', ...none, scansTable: true }],
  ['UPDATE users SET power = 0 WHERE id < 1000', { tables: ['public.users'], lock: 'ROW EXCLUSIVE', ...none }],
  ["INSERT INTO billing.invoices (number) VALUES ('A-1')", { kind: 'InsertStmt', tables: ['billing.invoices'], lock: 'ROW EXCLUSIVE', ...none }],
  ['DELETE FROM orders WHERE id = 1', { kind: 'DeleteStmt', tables: ['public.orders'], lock: 'ROW EXCLUSIVE', ...none }],
  ['TRUNCATE orders, users', { kind: 'TruncateStmt', tables: ['public.orders', 'public.users'], lock: 'ACCESS EXCLUSIVE', ...none }],
  ['DROP TABLE orders', { tables: ['public.orders'], lock: 'ACCESS EXCLUSIVE', ...none }],
  ['CREATE TABLE power (id integer)', { kind: 'CreateStmt', tables: ['public.power'], lock: 'none', ...none }],
  ['CREATE TABLE power (user_id integer REFERENCES users (id))', { tables: ['public.power', 'public.users'], lock: 'SHARE ROW EXCLUSIVE', ...none }],
  ['VACUUM FULL users', { kind: 'VacuumStmt', tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none, rewritesTable: true }],
  ['CLUSTER users USING users_pkey', { kind: 'ClusterStmt', tables: ['public.users'], lock: 'ACCESS EXCLUSIVE', ...none, rewritesTable: true }],
  ['LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE', { kind: 'LockStmt', tables: ['public.users'], lock: 'SHARE ROW EXCLUSIVE', ...none }],
  ['SELECT id FROM users', { kind: 'SelectStmt', tables: ['public.users'], lock: 'ACCESS SHARE', ...none }],
  ['WITH recent AS (SELECT * FROM orders) SELECT * FROM recent', { tables: ['public.orders'], lock: 'ACCESS SHARE', ...none }],
  ['CREATE EXTENSION IF NOT EXISTS pgcrypto', { kind: 'CreateExtensionStmt', tables: [], lock: 'none', ...none }],
];

describe('analyzeStatements', () => {
  for (const [sql, expected] of CASES) {
    test(sql, async () => {
      const [impact, ...rest] = await analyzeStatements([sql]);
      assert.equal(rest.length, 0);
      assert.ok(impact);
      const { kind, ...flags } = expected;
      assert.equal(impact.statement, sql);
      if (kind) assert.equal(impact.kind, kind);
      assert.deepEqual({ tables: impact.tables, lock: impact.lock, rewritesTable: impact.rewritesTable, buildsIndex: impact.buildsIndex, scansTable: impact.scansTable }, flags);
    });
  }

  test('ALTER TABLE with several subcommands takes the strongest lock and all their work', async () => {
    const [impact] = await analyzeStatements([
      'ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk, ALTER COLUMN note TYPE text',
    ]);
    assert.deepEqual([impact?.lock, impact?.rewritesTable, impact?.scansTable], ['ACCESS EXCLUSIVE', true, true]);
  });

  test('splits multi-statement strings, one impact per statement, in order', async () => {
    const impacts = await analyzeStatements(['CREATE TABLE a (id int); CREATE INDEX a_id_idx ON a (id)', 'DROP TABLE b']);
    assert.deepEqual(impacts.map((i) => [i.kind, i.statement]), [
      ['CreateStmt', 'CREATE TABLE a (id int)'],
      ['IndexStmt', 'CREATE INDEX a_id_idx ON a (id)'],
      ['DropStmt', 'DROP TABLE b'],
    ]);
  });

  test('an unparsable string becomes one Unparsed impact instead of failing the analysis', async () => {
    const impacts = await analyzeStatements(['NOT SQL AT ALL', 'SELECT 1']);
    assert.deepEqual(impacts.map((i) => [i.kind, i.lock]), [['Unparsed', 'none'], ['SelectStmt', 'none']]);
  });
});

describe('createdExtensions', () => {
  test('lists the extensions the statements create, lower-case and once each', async () => {
    const names = await createdExtensions([
      'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"; CREATE TABLE t (id int)',
      'create extension PGCRYPTO with schema public',
      'CREATE EXTENSION pgcrypto',
      'ALTER EXTENSION postgis UPDATE',
      'this does not parse',
    ]);
    assert.deepEqual(names.sort(), ['pgcrypto', 'uuid-ossp']);
  });

  test('no CREATE EXTENSION, no names', async () => {
    assert.deepEqual(await createdExtensions(['SELECT 1', '']), []);
  });
});
