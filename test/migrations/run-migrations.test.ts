// One node-pg-migrate runner call for a batch of migrations (services/migrations/run-one.ts
// runMigrations) with the rehearsal's hook between two of them, on real PostgreSQL:
// what each migration sent is its own, a failure is blamed on the migration that failed
// (also when its function throws before any SQL, or node-pg-migrate refuses it), and a
// hook's background reads see the schema as the next migration found it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runMigrations, type StepOutcome } from '../../services/migrations/run-one.js';
import { diskSource } from '../../services/migrations/source.js';
import type { EnvironmentConfig } from '../../services/environments/model.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const FILES: Record<string, string> = {
  '001_a.js': `exports.up = (pgm) => { pgm.sql('CREATE TABLE a (id int)'); }; exports.down = (pgm) => { pgm.sql('DROP TABLE a'); };`,
  // Its function queries the database itself while it builds its steps.
  '002_b.js': `exports.up = async (pgm) => { await pgm.db.query('CREATE TABLE b_direct (id int)'); pgm.sql('CREATE TABLE b (id int)'); };
               exports.down = false;`,
  '003_c.js': `exports.up = (pgm) => { pgm.sql('CREATE TABLE c (id int)'); }; exports.down = (pgm) => { pgm.sql('DROP TABLE c'); };`,
  '004_d.js': `exports.up = (pgm) => { pgm.noTransaction(); pgm.sql('CREATE TABLE d (id int)'); }; exports.down = (pgm) => { pgm.sql('DROP TABLE d'); };`,
};

// How long the first test's background read takes: longer than any of these migrations.
const WAIT_MS = 300;

const tables = async (client: pg.ClientBase) =>
  (await client.query<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'pgmigrations' ORDER BY 1`)).rows.map((r) => r.t);

describe('runMigrations: one runner call, hooks between migrations', () => {
  const dbs: TestDatabase[] = [];
  const dirs: string[] = [];
  let s: Awaited<ReturnType<typeof setup>>;
  after(async () => {
    // The sessions first: dropping a database ends them.
    await s?.close();
    for (const db of dbs) await db.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function setup(files: Record<string, string>) {
    const db = await createTestDatabase('run_many');
    dbs.push(db);
    const dir = await mkdtemp(join(tmpdir(), 'sf-run-many-'));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const env = { migrationsDir: dir, migrationsTable: 'pgmigrations', migrationsSchema: 'public' } as EnvironmentConfig;
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    return { db, dir, env, client, other, source: diskSource(dir), close: async () => { await client.end(); await other.end(); } };
  }

  before(async () => {
    s = await setup(FILES);
  });

  test('the hook runs between migrations, after the one before committed; its background reads the schema the next one found', async () => {
    const seen: Array<{ next: string; previous: string | null; committed: string[] }> = [];
    const background: Array<{ next: string; read: string[] }> = [];
    const { completed, failed } = await runMigrations(s.client, s.env, 'up', 10, {
      secrets: [],
      source: s.source,
      between: async (next, previous) => {
        seen.push({ next, previous: previous?.migration ?? null, committed: await tables(s.other) });
        // Read late, on another session, while `next` builds its steps: it must wait for this before its first statement.
        const read = new Promise<void>((resolve) => setTimeout(resolve, WAIT_MS)).then(async () => {
          background.push({ next, read: await tables(s.other) });
        });
        return { background: read };
      },
    });
    assert.equal(failed, null);
    assert.deepEqual(completed.map((o) => o.migration), ['001_a', '002_b', '003_c', '004_d']);
    assert.deepEqual(seen.map((x) => [x.next, x.previous]), [['001_a', null], ['002_b', '001_a'], ['003_c', '002_b'], ['004_d', '003_c']]);
    assert.deepEqual(seen[2]!.committed, ['a', 'b', 'b_direct'], 'the previous migration had committed when the hook ran');
    // 002_b's own pgm.db.query runs before its steps: the background read waited for it too, so it saw nothing of 002_b.
    assert.deepEqual(background.map((b) => [b.next, b.read]), [['001_a', []], ['002_b', ['a']], ['003_c', ['a', 'b', 'b_direct']], ['004_d', ['a', 'b', 'b_direct', 'c']]]);
    const b = completed.find((o) => o.migration === '002_b')!;
    assert.deepEqual(b.statements, ['CREATE TABLE b_direct (id int)', 'CREATE TABLE b (id int);'], "a function's own query is its migration's");
    assert.deepEqual(completed.find((o) => o.migration === '001_a')!.statements, ['CREATE TABLE a (id int);']);
    assert.equal(completed.find((o) => o.migration === '004_d')!.transactional, false);
    // Each waited WAIT_MS for the read before its first statement: that is the hook's time, not the migration's.
    for (const o of completed) assert.ok(o.durationMs < WAIT_MS, `${o.migration} took ${o.durationMs} ms of its own`);
  });

  test("the background never waits for a lock the next migration holds: it is done before that migration's first statement", async () => {
    const locked = await setup({
      '001_checked.js': `exports.up = (pgm) => { pgm.sql('CREATE TABLE checked (id int CHECK (id > 0))'); }; exports.down = false;`,
      // ACCESS EXCLUSIVE on checked until its COMMIT; pg_get_constraintdef on another session queues behind it.
      '002_alter.js': `exports.up = (pgm) => { pgm.sql('ALTER TABLE checked ADD COLUMN note text'); }; exports.down = false;`,
    });
    try {
      // Bounded, so a read that queues behind the migration fails the test instead of hanging it.
      await locked.other.query("SET lock_timeout = '3s'");
      const read: Array<{ next: string; checks: string[]; columns: number }> = [];
      const { completed, failed } = await runMigrations(locked.client, locked.env, 'up', 10, {
        secrets: [],
        source: locked.source,
        between: async (next) => ({
          background: (async () => {
            const { rows } = await locked.other.query<{ def: string; columns: number }>(
              `SELECT pg_get_constraintdef(co.oid) AS def, (SELECT count(*)::int FROM pg_attribute WHERE attrelid = co.conrelid AND attnum > 0) AS columns
                 FROM pg_constraint co WHERE co.conrelid = to_regclass('public.checked') AND co.contype = 'c'`);
            read.push({ next, checks: rows.map((r) => r.def), columns: rows[0]?.columns ?? 0 });
          })(),
        }),
      });
      assert.equal(failed, null, JSON.stringify(failed?.error));
      assert.deepEqual(completed.map((o) => o.migration), ['001_checked', '002_alter']);
      assert.deepEqual(read, [{ next: '001_checked', checks: [], columns: 0 }, { next: '002_alter', checks: ['CHECK ((id > 0))'], columns: 1 }], 'each read saw the schema its migration found');
    } finally {
      await locked.close();
    }
  });

  test('a refused down in the middle of a batch is blamed on that migration, not on the one before it', async () => {
    const outcomes: StepOutcome[] = [];
    const { completed, failed } = await runMigrations(s.client, s.env, 'down', 4, {
      secrets: [],
      source: s.source,
      between: async (_next, previous) => {
        if (previous) outcomes.push(previous);
      },
    });
    assert.deepEqual(completed.map((o) => o.migration), ['004_d', '003_c']);
    assert.equal(failed?.migration, '002_b');
    assert.match(failed!.error!.message, /disabled down migration/);
    assert.equal(failed!.error!.statement, null, 'it sent nothing');
    assert.deepEqual(await tables(s.client), ['a', 'b', 'b_direct']);
  });

  test('a down count of 0 reverts nothing (node-pg-migrate would read it as all)', async () => {
    const { completed, failed } = await runMigrations(s.client, s.env, 'down', 0, { secrets: [], source: s.source });
    assert.deepEqual([completed.length, failed], [0, null]);
    assert.deepEqual(await tables(s.client), ['a', 'b', 'b_direct']);
  });

  test('a function that throws before any SQL is that migration\'s failure; the ones before it stay committed', async () => {
    const t = await setup({
      '001_ok.js': `exports.up = (pgm) => { pgm.sql('CREATE TABLE ok (id int)'); };`,
      '002_throws.js': `exports.up = () => { throw new Error('cannot build the steps'); };`,
    });
    try {
      const { completed, failed } = await runMigrations(t.client, t.env, 'up', 10, { secrets: [], source: t.source, between: async () => undefined });
      assert.deepEqual(completed.map((o) => o.migration), ['001_ok']);
      assert.equal(failed?.migration, '002_throws');
      assert.match(failed!.error!.message, /cannot build the steps/);
      assert.deepEqual(completed[0]!.statements, ['CREATE TABLE ok (id int);'], "the previous migration's statements do not take the failure's");
      assert.deepEqual(await tables(t.client), ['ok']);
    } finally {
      await t.close();
    }
  });

  test("a failing hook background stops the batch before the next migration commits, and is thrown as it is", async () => {
    const t = await setup({
      '001_one.js': `exports.up = (pgm) => { pgm.sql('CREATE TABLE one (id int)'); };`,
      '002_two.js': `exports.up = (pgm) => { pgm.sql('CREATE TABLE two (id int)'); };`,
    });
    try {
      const broken = new Error('the fingerprint session went away');
      await assert.rejects(runMigrations(t.client, t.env, 'up', 10, {
        secrets: [],
        source: t.source,
        between: async (next) => (next === '002_two' ? { background: Promise.reject(broken) } : undefined),
      }), (err) => err === broken);
      assert.deepEqual(await tables(t.client), ['one'], "002_two's transaction was rolled back");
    } finally {
      await t.close();
    }
  });
});
