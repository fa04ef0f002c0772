// The rehearsal's fingerprint reads may be told which relations most likely
// changed since the last read (the down phase passes what each migration's up
// changed): those are read on the second session beside the signatures,
// instead of after them. The signatures still decide. After every step, and
// whatever the hint (right, empty, too much, wrong), the read must equal a
// full read; with a right hint the first session reads no relation rows,
// with a wrong one it reads exactly what the hint missed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { fingerprintDigest, fingerprintReader, QUALIFIED_SESSION_OPTIONS, readFingerprint } from '../../services/migrations/schema-fingerprint.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const scope = { migrationsSchema: 'public', migrationsTable: 'pgmigrations' };

const STEPS = [
  'CREATE TABLE fh_a (id serial PRIMARY KEY, name text); CREATE TABLE fh_b (id int, a_id int REFERENCES fh_a (id))',
  'CREATE INDEX fh_b_a ON fh_b (a_id); COMMENT ON COLUMN fh_a.name IS $$who$$',
  'ALTER TABLE fh_a ADD COLUMN code varchar(10) NOT NULL DEFAULT $$x$$; ALTER TABLE fh_b RENAME COLUMN id TO b_id',
  'CREATE VIEW fh_v AS SELECT id, name FROM fh_a; ALTER SEQUENCE fh_a_id_seq INCREMENT BY 5',
  'DROP INDEX fh_b_a; ALTER TABLE fh_b DROP CONSTRAINT fh_b_a_id_fkey',
  'DROP VIEW fh_v; DROP TABLE fh_b; ALTER TABLE fh_a ADD COLUMN gone boolean',
];

type Hint = 'right' | 'none' | 'all' | 'wrong';

describe('fingerprint reads with a hint of what changed', () => {
  let db: TestDatabase;
  let migration: pg.Client;
  // The reader under test reads on `first` and `second`; an unhinted twin (on its own two) tells what each step changed.
  let first: pg.Client;
  let second: pg.Client;
  let twin: [pg.Client, pg.Client];

  before(async () => {
    db = await createTestDatabase('fingerprint_hint');
    const open = async (options?: string) => {
      const c = new pg.Client({ connectionString: db.url, ...(options ? { options } : {}) });
      await c.connect();
      return c;
    };
    const [m, ...qualified] = await Promise.all([open(), ...[1, 2, 3, 4].map(() => open(QUALIFIED_SESSION_OPTIONS))]);
    migration = m;
    [first, second] = [qualified[0]!, qualified[1]!];
    twin = [qualified[2]!, qualified[3]!];
  });
  after(async () => {
    await Promise.all([migration, first, second, ...(twin ?? [])].map((c) => c?.end()));
    await db?.drop();
  });

  for (const kind of ['right', 'none', 'all', 'wrong'] as Hint[]) {
    test(`a ${kind} hint: every read equals a full read, and the first session reads only what the hint missed`, async () => {
      await migration.query('DROP VIEW IF EXISTS fh_v; DROP TABLE IF EXISTS fh_b, fh_a CASCADE');
      const read = fingerprintReader(scope, { qualifiedSession: true });
      const unhinted = fingerprintReader(scope, { qualifiedSession: true });
      // The relations each session was asked to read rows of (the relation query's third parameter).
      const asked = { first: [] as number[], second: [] as number[] };
      const recording = (client: pg.Client, into: number[]) => ({
        query: (q: pg.QueryConfig) => {
          if (q.name === 'sfm-fingerprint-relations') into.push(...((q.values?.[2] as number[]) ?? []));
          return client.query(q);
        },
      }) as unknown as pg.Client;
      const db1 = recording(first, asked.first);
      const db2 = recording(second, asked.second);
      await Promise.all([read(db1, db2), unhinted(twin[0], twin[1])]);
      const userOids = async () => (await migration.query<{ oid: number }>(`SELECT c.oid::int AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S') ORDER BY 1`)).rows.map((r) => r.oid);
      const sorted = (list: number[]) => [...list].sort((a, b) => a - b);
      for (const sql of STEPS) {
        await migration.query(sql);
        let truth: number[] = [];
        await unhinted(twin[0], twin[1], { onChanged: (oids) => (truth = oids) });
        assert.ok(truth.length > 0, `"${sql}" changes some relation`);
        const all = await userOids();
        const hint = kind === 'none' ? [] : kind === 'all' ? all : kind === 'wrong' ? all.filter((oid) => !truth.includes(oid)).slice(0, 1) : truth;
        asked.first.length = 0;
        asked.second.length = 0;
        let changed: number[] = [];
        const fp = await read(db1, db2, { hint, onChanged: (oids) => (changed = oids) });
        assert.equal(fingerprintDigest(fp), fingerprintDigest(await readFingerprint(migration, scope)), `after "${sql}" with a ${kind} hint, the read differs from a full read`);
        assert.deepEqual(sorted(changed), sorted(truth), 'the hint does not change what counts as changed');
        const missed = truth.filter((oid) => !hint.includes(oid));
        assert.deepEqual(sorted(asked.first), sorted(missed), `after "${sql}": the first session reads only what the hint missed`);
        assert.deepEqual(sorted(asked.second), sorted(hint), 'the second session reads the hinted relations');
      }
    });
  }
});
