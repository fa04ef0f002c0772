import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { readSchemaFacts, schemaFactsReader } from '../../services/preflight/catalog-facts.js';
import type { SchemaFacts } from '../../services/preflight/sql-analysis/schema-facts.js';
import { fingerprintReader, GENERIC_PLANS, QUALIFIED_SESSION_OPTIONS, type RelationSignature } from '../../services/migrations/schema-fingerprint.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

// The rehearsal reads the linter's catalog facts before every migration,
// keeping a table's facts while its fingerprint signature stands
// (catalog-facts.ts). After every kind of step, that kept read must be the
// full read: the steps include those that change a kept table's facts
// without changing any catalog row of the table itself (a type or a schema
// renamed), and the migrations table, which the fingerprint leaves out.

const plain = (f: SchemaFacts) => ({
  columnTypes: [...f.columnTypes].sort(),
  notNullChecks: [...f.notNullChecks].sort((a, b) => a[0].localeCompare(b[0])),
  functions: [...f.functions].filter(([k]) => k.includes('lf_')).sort(),
  materializedViews: [...f.materializedViews].sort(),
});

// `reads`: the tables (of those with a signature) whose facts the step makes the reader read again; '*' all of them.
const STEPS: Array<{ name: string; sql: string; reads?: string[] | '*'; shows?: (f: SchemaFacts) => void }> = [
  { name: 'tables created', sql: "CREATE TYPE mood AS ENUM ('ok'); CREATE TABLE lf_a (id int, name varchar(20), m mood); CREATE TABLE lf_b (id int, code text)" },
  { name: 'a column type changed', reads: ['lf_a'], sql: 'ALTER TABLE lf_a ALTER COLUMN name TYPE varchar(40)', shows: (f) => assert.equal(f.columnTypes.get('public.lf_a.name'), 'character varying(40)') },
  { name: 'a NOT NULL check added, then validated', sql: 'ALTER TABLE lf_b ADD CONSTRAINT lf_b_code_nn CHECK (code IS NOT NULL) NOT VALID' },
  { name: 'validated', sql: 'ALTER TABLE lf_b VALIDATE CONSTRAINT lf_b_code_nn', shows: (f) => assert.equal(f.notNullChecks.get('public.lf_b/lf_b_code_nn')?.validated, true) },
  { name: 'an enum renamed (no row of lf_a changes)', reads: '*', sql: 'ALTER TYPE mood RENAME TO feeling', shows: (f) => assert.equal(f.columnTypes.get('public.lf_a.m'), 'feeling') },
  { name: 'a schema renamed (no row of its tables changes)', sql: 'CREATE SCHEMA lf_s; CREATE TABLE lf_s.t (x int); ALTER SCHEMA lf_s RENAME TO lf_r', shows: (f) => assert.ok(f.columnTypes.has('lf_r.t.x')) },
  { name: 'a table renamed', sql: 'ALTER TABLE lf_b RENAME TO lf_c', shows: (f) => assert.ok(f.columnTypes.has('public.lf_c.code')) },
  { name: 'a column renamed', reads: ['lf_c'], sql: 'ALTER TABLE lf_c RENAME COLUMN code TO kode', shows: (f) => assert.ok(f.columnTypes.has('public.lf_c.kode')) },
  { name: 'a function and a materialized view', sql: "CREATE FUNCTION lf_f() RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT 1'; CREATE MATERIALIZED VIEW lf_mv AS SELECT 1 AS one", shows: (f) => assert.equal(f.functions.get('lf_f'), 'immutable') },
  { name: 'the function made volatile', sql: 'ALTER FUNCTION lf_f() VOLATILE', shows: (f) => assert.equal(f.functions.get('lf_f'), 'volatile') },
  { name: 'the migrations table changes', reads: ['pgmigrations'], sql: 'ALTER TABLE pgmigrations ADD COLUMN extra text', shows: (f) => assert.equal(f.columnTypes.get('public.pgmigrations.extra'), 'text') },
  { name: 'a table dropped', sql: 'DROP TABLE lf_a', shows: (f) => assert.ok(!f.columnTypes.has('public.lf_a.id')) },
  { name: 'nothing changed', reads: [], sql: 'SELECT 1' },
];

describe('lint facts kept by relation signature', () => {
  let db: TestDatabase;
  let reader: pg.Client;
  let lintSession: pg.Client;
  let migration: pg.Client;

  before(async () => {
    db = await createTestDatabase('lint_facts_incremental');
    const open = async (options?: string) => {
      const c = new pg.Client({ connectionString: db.url, ...(options ? { options } : {}) });
      await c.connect();
      return c;
    };
    [reader, lintSession, migration] = await Promise.all([open(QUALIFIED_SESSION_OPTIONS), open(GENERIC_PLANS), open()]);
    await migration.query('CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)');
  });
  after(async () => {
    await Promise.all([reader, lintSession, migration].map((c) => c?.end()));
    await db?.drop();
  });

  test('after every step the kept read equals a full read, and it read only the tables that changed', async () => {
    const fingerprint = fingerprintReader({ migrationsSchema: 'public', migrationsTable: 'pgmigrations' }, { qualifiedSession: true });
    const facts = schemaFactsReader();
    // The tables each read asked for again (the relation query's first parameter).
    let asked: number[] = [];
    const recording = {
      query: (q: pg.QueryConfig) => {
        if (q.name === 'sfm-lint-relation-facts') asked.push(...((q.values?.[0] as number[] | null) ?? []));
        return lintSession.query(q);
      },
    } as unknown as pg.Client;
    let sigs: RelationSignature[] = [];
    const read = async () => {
      asked = [];
      await fingerprint(reader, reader, { onSignatures: (s) => (sigs = s) });
      return facts(recording, sigs);
    };
    const names = async (oids: number[]) =>
      (await migration.query<{ name: string }>('SELECT relname AS name FROM pg_class WHERE oid = ANY($1::oid[]) ORDER BY 1', [oids])).rows.map((r) => r.name);
    await read();
    for (const step of STEPS) {
      await migration.query(step.sql);
      const kept = await read();
      assert.deepEqual(plain(kept), plain(await readSchemaFacts(lintSession)), `after "${step.name}" the kept read differs from a full read`);
      step.shows?.(kept);
      if (step.reads === '*') assert.deepEqual(new Set(asked), new Set(sigs.map((s) => s.oid)), `"${step.name}" reads every table again`);
      else if (step.reads) assert.deepEqual(await names(asked), step.reads, `"${step.name}" reads only what changed`);
    }
  });
});
