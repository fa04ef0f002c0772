// Observed effects on real PostgreSQL: migrations whose risky SQL the text
// does not show (a DO block, an EXECUTEd string, SQL built in JS, a search_path
// switch) are run on a schema-only copy with the observer installed, and
// judged against a target whose tables hold rows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { withDatabase } from '../../database/db.js';
import { diskSource } from '../../services/migrations/source.js';
import { runOne } from '../../services/migrations/run-one.js';
import { beginObserved, collectObserved, installObserver, judgeObserved, mergeObserved, readPreExisting, type Observation } from '../../services/preflight/observe/index.js';
import type { EnvironmentConfig } from '../../services/environments/model.js';
import { adminQuery, adminUrl, createTestDatabase, type TestDatabase } from '../support/db.js';

const SCHEMA = 'CREATE SCHEMA app; CREATE TABLE orders (id int PRIMARY KEY, total int, note text); CREATE TABLE app.accounts (id int PRIMARY KEY, email text);';

interface Run {
  observations: Observation[];
  method: string;
}

const OBSERVER_PASSWORD = 'sf-observer-test';

describe('observed effects', () => {
  let target: TestDatabase;
  let dir: string;
  const copies: TestDatabase[] = [];

  before(async () => {
    target = await createTestDatabase('observe_target');
    await target.query(`${SCHEMA}
      INSERT INTO orders SELECT g, g, 'n' FROM generate_series(1, 2000) g;
      INSERT INTO app.accounts SELECT g, 'e' || g FROM generate_series(1, 500) g;
      ANALYZE;`);
  });
  after(async () => {
    for (const c of copies) await c.drop();
    await target?.drop();
  });

  /** Runs `files` (name -> source) on a fresh schema-only copy, observing each migration, as the rehearsal does. */
  async function rehearse(files: Record<string, string>, as?: string): Promise<Run> {
    const copy = await createTestDatabase('observe_copy');
    copies.push(copy);
    await copy.query(SCHEMA);
    let url = copy.url;
    if (as) {
      // The role owns the copy and its tables, as a rehearsal role on a managed server would, but is no superuser.
      await copy.query(`ALTER DATABASE ${copy.name} OWNER TO ${as}; ALTER TABLE orders OWNER TO ${as}; ALTER SCHEMA app OWNER TO ${as}; ALTER TABLE app.accounts OWNER TO ${as};`);
      const u = new URL(withDatabase(adminUrl(), copy.name));
      u.username = as;
      // A password, so the role signs in where the server asks for one (the embedded test server does).
      u.password = OBSERVER_PASSWORD;
      url = u.toString();
    }
    dir = await mkdtemp(join(tmpdir(), 'sf-observe-'));
    for (const [name, source] of Object.entries(files)) await writeFile(join(dir, name), source);
    const env = { migrationsDir: dir, migrationsTable: 'pgmigrations', migrationsSchema: 'public' } as EnvironmentConfig;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const method = await installObserver(client, { url });
      const observations: Observation[] = [];
      const source = diskSource(dir);
      for (const name of Object.keys(files).sort().map((f) => f.replace(/\.[a-z]+$/, ''))) {
        await beginObserved(client, name);
        const outcome = await runOne(client, env, 'up', { secrets: [], source });
        assert.equal(outcome.error, null, `${name}: ${outcome.error?.message}`);
        observations.push(await collectObserved(client, name));
      }
      return { observations, method };
    } finally {
      await client.end();
      await rm(dir, { recursive: true, force: true });
    }
  }

  async function judge(run: Run) {
    const client = new pg.Client({ connectionString: target.url });
    await client.connect();
    try {
      return judgeObserved(run.observations, await readPreExisting(client, run.observations));
    } finally {
      await client.end();
    }
  }

  const sql = (up: string) => `-- Up Migration\n${up}\n-- Down Migration\nSELECT 1;\n`;

  test('each hidden risk is flagged with the lock mode and relation observed; the same statements on a table created in the run are not', async () => {
    const run = await rehearse({
      '1700000000001_do-index.sql': sql(`DO $$ BEGIN EXECUTE 'CREATE INDEX orders_total_idx ON ' || 'orders (total)'; END $$;`),
      '1700000000002_execute-type.sql': sql(`DO $$ DECLARE t text := 'orders'; BEGIN EXECUTE format('ALTER TABLE %I ALTER COLUMN total TYPE bigint', t); END $$;`),
      '1700000000003_built.js': [
        "const table = ['ord', 'ers'].join('');",
        'exports.up = (pgm) => { pgm.sql(`ALTER TABLE ${table} ADD CONSTRAINT orders_total_positive CHECK (total > 0)`); };',
        'exports.down = () => {};',
      ].join('\n'),
      '1700000000004_search-path.sql': sql('SET LOCAL search_path TO app, public;\nCREATE INDEX accounts_email_idx ON accounts (email);'),
      '1700000000005_fresh.sql': sql([
        'CREATE TABLE fresh (id int, total int);',
        "DO $$ BEGIN EXECUTE 'CREATE INDEX fresh_total_idx ON fresh (total)'; EXECUTE 'ALTER TABLE fresh ALTER COLUMN total TYPE bigint'; END $$;",
        'ALTER TABLE fresh ADD CONSTRAINT fresh_total_positive CHECK (total > 0);',
        'CREATE SCHEMA scratch; SET LOCAL search_path TO scratch; CREATE TABLE accounts (email text); CREATE INDEX ON accounts (email);',
      ].join('\n')),
    });
    assert.equal(run.method, 'event-triggers');
    const findings = await judge(run);
    const summary = findings.map((f) => [f.migration, f.rule, f.relation]);
    assert.deepEqual(summary, [
      ['1700000000001_do-index', 'observed-blocking-lock', 'public.orders'],
      ['1700000000002_execute-type', 'observed-table-rewrite', 'public.orders'],
      ['1700000000003_built', 'observed-validation-scan', 'public.orders'],
      ['1700000000004_search-path', 'observed-blocking-lock', 'app.accounts'],
    ]);
    const [index, rewrite, validation, searchPath] = findings;
    assert.match(index!.message, /held SHARE on public\.orders \(about 2,000 rows on the target\), blocking all writes, while it read every row of it \(CREATE INDEX public\.orders_total_idx\)/);
    assert.match(rewrite!.message, /rewrote public\.orders .*a column type changed, in ALTER TABLE public\.orders.*ACCESS EXCLUSIVE blocks all reads and writes/);
    assert.match(validation!.message, /read every row of public\.orders .* to validate ALTER TABLE public\.orders while holding ACCESS EXCLUSIVE on it/);
    assert.match(searchPath!.message, /held SHARE on app\.accounts/);
    for (const f of findings) assert.match(f.message, /seen by event triggers on the rehearsal copy\) See docs\/rules\/observed-[a-z-]+\.md\.$/);
  });

  test('a dropped table or column that holds data on the target is flagged', async () => {
    const run = await rehearse({
      '1700000000001_drops.js': "exports.up = (pgm) => { pgm.dropColumns('orders', ['note']); pgm.dropTable({ schema: 'app', name: 'accounts' }); };\nexports.down = () => {};\n",
    });
    const findings = await judge(run);
    assert.deepEqual(findings.map((f) => [f.rule, f.relation, f.statement]), [
      ['observed-dropped-data', 'public.orders', 'ALTER TABLE public.orders.note'],
      ['observed-dropped-data', 'app.accounts', 'DROP TABLE app.accounts'],
    ]);
  });

  test('a catalog-only change takes a strong lock but reads nothing: not flagged', async () => {
    const findings = await judge(await rehearse({ '1700000000001_add-column.sql': sql('ALTER TABLE orders ADD COLUMN seen_at timestamptz;') }));
    assert.deepEqual(findings, []);
  });

  test('a lock counts only while held: in its transaction, for a scan after it', async () => {
    const run = await rehearse({
      '1700000000001_held.sql': sql('LOCK TABLE app.accounts IN SHARE MODE;\nCREATE INDEX orders_total_idx ON orders (total);'),
      '1700000000002_released.js': [
        'exports.up = (pgm) => {',
        '  pgm.noTransaction();',
        "  pgm.sql('ALTER TABLE app.accounts ADD COLUMN IF NOT EXISTS seen_at timestamptz');",
        "  pgm.sql('CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_id_idx ON orders (id)');",
        '};',
        'exports.down = () => {};',
      ].join('\n'),
    });
    const findings = await judge(run);
    assert.deepEqual(findings.map((f) => [f.migration, f.relation]).sort(), [['1700000000001_held', 'app.accounts'], ['1700000000001_held', 'public.orders']]);
    assert.match(findings.find((f) => f.relation === 'app.accounts')!.message, /held SHARE on app\.accounts .* while it read every row of public\.orders/);
  });

  test('without superuser the observer samples pg_locks and compares relfilenodes, and says so', async () => {
    const role = `sf_observer_${randomBytes(3).toString('hex')}`;
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD '${OBSERVER_PASSWORD}'`);
    try {
      const run = await rehearse({ '1700000000001_type.sql': sql('ALTER TABLE orders ALTER COLUMN total TYPE bigint;\nSELECT pg_sleep(0.3);') }, role);
      assert.equal(run.method, 'sampling');
      assert.match(run.observations[0]!.notes.join(' '), /need a superuser.*sampling pg_locks/);
      const findings = await judge(run);
      assert.deepEqual(findings.map((f) => [f.rule, f.relation]), [['observed-table-rewrite', 'public.orders']]);
      assert.match(findings[0]!.message, /ACCESS EXCLUSIVE blocks all reads and writes.*seen by sampling pg_locks and relfilenodes/);
    } finally {
      for (const c of copies.splice(0)) await c.drop();
      await adminQuery(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  test('a static finding on the same migration and table absorbs the observation; others stand', () => {
    const staticFinding = { rule: 'require-concurrent-index-creation', severity: 'error' as const, migration: 'm1', statement: 'CREATE INDEX i ON orders (total)', message: 'CREATE INDEX on existing table public.orders holds a SHARE lock. See docs/rules/require-concurrent-index-creation.md.', acknowledged: null };
    const observed = (migration: string, relation: string) => ({
      rule: 'observed-blocking-lock', severity: 'error' as const, migration, relation, statement: 'CREATE INDEX public.i', acknowledged: null,
      message: `Migration ${migration} held SHARE on ${relation}. See docs/rules/observed-blocking-lock.md.`,
    });
    const merged = mergeObserved([staticFinding], [observed('m1', 'public.orders'), observed('m2', 'public.orders')]);
    assert.equal(merged.length, 2);
    assert.match(merged[0]!.message, /Confirmed in the rehearsal \(observed-blocking-lock\): Migration m1 held SHARE on public\.orders\.$/);
    assert.deepEqual([merged[1]!.rule, merged[1]!.migration, 'relation' in merged[1]!], ['observed-blocking-lock', 'm2', false]);
  });
});
