// The data-bearing rehearsal (preflight.data): the throw-away copy holds a
// sample or all of the target's rows, the UP phase is timed statement by
// statement with the locks it held and the growth it caused, and the
// estimates scaled from the copy stand beside the static ones. The report
// carries counts, sizes and timings of the data, never a value.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { insertBackup } from '../../database/sql/apply.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { createBackup } from '../../services/apply/backup.js';
import { plannedIndexWorkers } from '../../services/preflight/data-rehearsal/calibrate.js';
import { dataRehearsalSection } from '../../services/preflight/data-rehearsal/report-section.js';
import { withoutDataValues } from '../../services/preflight/data-rehearsal/redact.js';
import { historyFromScript } from '../../services/preflight/data-rehearsal/seed-full.js';
import { samplePercent } from '../../services/preflight/data-rehearsal/seed-sample.js';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { applyMigrations, migrationSource, writeMigrations } from '../support/migrations.js';

let t: TestApp;
let qa: TestDatabase;
let dir: string;

const SAMPLE_ROWS = 5000;
// Every copied value carries this marker: none may reach a report.
const SECRET = 'secret-';

const BASE = migrationSource(`
  CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, code text);
  CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id), total int NOT NULL, note text);
  CREATE TABLE items (id int PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), sku text);
  CREATE TABLE order_audit (order_id bigint, at timestamptz DEFAULT now());
  CREATE FUNCTION audit_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO order_audit (order_id) VALUES (NEW.id); RETURN NEW; END $$;
  CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION audit_order();
  INSERT INTO customers SELECT g, '${SECRET}' || g || '@example.test', '${SECRET}code-' || g FROM generate_series(1, 10000) g;
  ALTER TABLE orders DISABLE TRIGGER orders_audit;
  INSERT INTO orders (customer_id, total, note) SELECT 1 + (g % 10000), g % 997, '${SECRET}note-' || g FROM generate_series(1, 30000) g;
  ALTER TABLE orders ENABLE TRIGGER orders_audit;
  INSERT INTO items SELECT g, 1 + (g % 30000), '${SECRET}sku-' || g FROM generate_series(1, 10000) g;
  ANALYZE customers; ANALYZE orders; ANALYZE items; ANALYZE order_audit;
`, 'DROP TABLE items, orders, customers, order_audit; DROP FUNCTION audit_order()');
const TARGET_ROWS = { 'public.customers': 10000, 'public.orders': 30000, 'public.items': 10000, 'public.order_audit': 0 };

// One migration, two statements: an index build and a column type change (a rewrite).
const INDEX_AND_REWRITE = `export const up = (pgm) => { pgm.sql('CREATE INDEX orders_total_idx ON orders (total)'); pgm.sql('ALTER TABLE orders ALTER COLUMN total TYPE bigint'); };
export const down = (pgm) => { pgm.sql('ALTER TABLE orders ALTER COLUMN total TYPE int'); pgm.sql('DROP INDEX orders_total_idx'); };
`;

type Report = Record<string, any>;

async function preflight(environment: string): Promise<{ id: string; report: Report; markdown: string }> {
  const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment, description: 'data rehearsal' });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  return { id: res.body.id, ...(await reportOf(res.body.id)) };
}

async function reportOf(id: string): Promise<{ report: Report; markdown: string }> {
  const { report } = (await t.http().get(`/v1/runs/${id}/preflight`).set('authorization', bearer('vic'))).body;
  const markdown = (await t.http().get(`/v1/runs/${id}/preflight?format=md`).set('authorization', bearer('vic'))).text;
  return { report, markdown };
}

function assertNoRowValues(report: Report, markdown: string): void {
  assert.doesNotMatch(JSON.stringify(report), new RegExp(SECRET), 'no copied value in the report');
  assert.doesNotMatch(markdown, new RegExp(SECRET), 'no copied value in the Markdown');
}

const statementOf = (m: Report, pattern: RegExp) => (m.statements as Report[]).find((s) => pattern.test(s.sql))!;
const estimateOf = (d: Report, pattern: RegExp) => (d.scaledEstimates as Report[]).find((e) => pattern.test(e.statement))!;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-data-rehearsal-'));
  qa = await createTestDatabase('data_rehearsal_qa');
  const config = `
    const env = (urlEnv, preflight) => ({ databaseUrlEnv: urlEnv, migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] }, preflight });
    export default { environments: {
      staging: env('STAGING_DATABASE_URL', { data: 'sample', sampleRows: ${SAMPLE_ROWS} }),
      production: env('PRODUCTION_DATABASE_URL', { data: 'full', fullDataMaxBytes: 1048576 }),
      qa: env('QA_DATABASE_URL', { data: 'full' }),
    } };`;
  t = await startTestApp({ label: 'data_rehearsal', migrationConfigSource: config, env: { QA_DATABASE_URL: qa.url } });
  await writeMigrations(dir, { '1000_base': BASE, '1100_index-and-rewrite': INDEX_AND_REWRITE });
  for (const db of [t.targets.staging, t.targets.production, qa]) await applyMigrations(db.url, dir, 1);
});

after(async () => {
  await t?.close();
  await qa?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('sample', () => {
  test('copies a bounded sample of each table, times each statement with its locks and growth, and scales it beside the static estimate', async () => {
    const { report, markdown } = await preflight('staging');
    const d = report.dataRehearsal;
    assert.ok(d, 'the report has a dataRehearsal section');
    assert.equal(d.mode, 'sample');
    assert.equal(d.skipped, null);
    // Bounded: no table gives more than sampleRows, and every one with rows gave some (foreign keys did not stop the load).
    const tables = new Map((d.tables as Report[]).map((x) => [x.table, x]));
    for (const [table, rows] of Object.entries(TARGET_ROWS)) {
      const seeded = tables.get(table);
      assert.ok(seeded, `${table} was seeded`);
      assert.ok(seeded.copiedRows <= SAMPLE_ROWS, `${table}: ${seeded.copiedRows} rows copied`);
      if (rows > 0) assert.ok(seeded.copiedRows > 0, `${table} got rows`);
      assert.ok(Math.abs(seeded.targetRows - rows) <= rows * 0.1, `${table}: ${seeded.targetRows} rows on the target, expected about ${rows}`);
    }
    assert.equal(tables.get('public.order_audit')!.copiedRows, 0, 'user triggers stayed quiet while the sample loaded');
    assert.equal(d.seededRows, [...tables.values()].reduce((sum, x) => sum + x.copiedRows, 0));
    assert.ok(d.seededRows <= 3 * SAMPLE_ROWS && d.seededRows > 0);
    assert.ok(d.seededBytes > 0);
    assert.ok((d.foreignKeysNotValid as string[]).length >= 1, 'sampled children reference unsampled parents: their keys stay NOT VALID');

    const m = (d.perMigration as Report[]).find((x) => x.migration === '1100_index-and-rewrite');
    assert.ok(m, JSON.stringify(d.perMigration));
    const index = statementOf(m, /^CREATE INDEX orders_total_idx/);
    const rewrite = statementOf(m, /^ALTER TABLE orders ALTER COLUMN total TYPE bigint/);
    assert.ok(index.ms > 0 && rewrite.ms > 0);
    // Both held until the migration's COMMIT: the index's SHARE lock outlasts its own statement.
    const share = (index.locks as Report[]).find((l) => l.relation === 'public.orders' && l.mode === 'SHARE');
    assert.ok(share, JSON.stringify(index.locks));
    assert.ok(share.heldMs >= index.ms + rewrite.ms, `SHARE held ${share.heldMs} ms, the statements took ${index.ms} + ${rewrite.ms} ms`);
    const exclusive = (rewrite.locks as Report[]).find((l) => l.relation === 'public.orders' && l.mode === 'ACCESS EXCLUSIVE');
    assert.ok(exclusive && exclusive.heldMs >= rewrite.ms, JSON.stringify(rewrite.locks));
    const orders = (m.growth as Report[]).find((g) => g.table === 'public.orders');
    assert.ok(orders && orders.bytesAfter > orders.bytesBefore, JSON.stringify(m.growth));
    assert.ok(orders.estimatedTargetGrowthBytes > orders.bytesAfter - orders.bytesBefore, 'the growth scales up to the target');

    const built = estimateOf(d, /^CREATE INDEX orders_total_idx/);
    assert.equal(typeof index.msAgain, 'number', 'the re-applied up was timed too');
    assert.equal(built.sampleMs, Math.min(index.ms, index.msAgain), 'the lower time of the two ups is scaled');
    assert.equal(built.method, 'n-log-n');
    assert.deepEqual(built.tables, ['public.orders']);
    assert.ok(built.scale > 30000 / SAMPLE_ROWS, `n log n scale ${built.scale} exceeds the row ratio`);
    // The fixed cost is not scaled; nothing here is big enough for a parallel build.
    assert.equal(built.parallelWorkers, 0);
    assert.ok(built.fixedMs >= 0 && built.fixedMs <= built.sampleMs);
    const expected = built.fixedMs + (built.sampleMs - built.fixedMs) * built.scale;
    assert.ok(Math.abs(built.estimatedTargetMs - expected) <= 0.01 * expected + 1, `${built.estimatedTargetMs} vs ${expected}`);
    assert.equal(typeof built.staticEstimateMs, 'number', 'the static estimate stands beside it');
    const rewritten = estimateOf(d, /^ALTER TABLE orders ALTER COLUMN total TYPE bigint/);
    assert.equal(rewritten.method, 'linear');
    assert.ok(Math.abs(rewritten.scale - 30000 / tables.get('public.orders')!.copiedRows) < 0.1 * rewritten.scale);
    assert.equal(typeof rewritten.staticEstimateMs, 'number');

    assert.match(markdown, /## Data-bearing rehearsal/);
    assert.match(markdown, /\| 1100_index-and-rewrite \| `CREATE INDEX orders_total_idx ON orders \(total\);?` \| .* \| ×[\d.]+ \(n-log-n: public\.orders[;)]/);
    assert.match(markdown, /### Locks held on the copy[\s\S]*public\.orders \| SHARE \|/);
    assertNoRowValues(report, markdown);
    // The target was only read.
    assert.equal((await t.targets.staging.query("SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'orders_total_idx'")).rows[0].n, 0);
    assert.equal((await t.targets.staging.query("SELECT data_type FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'total'")).rows[0].data_type, 'integer');
    assert.equal((await t.targets.staging.query('SELECT count(*)::int AS n FROM order_audit')).rows[0].n, 0);
  });

  test('a migration that fails only on the rows fails preflight, and its message does not quote them', async () => {
    await writeMigrations(dir, {
      '1000_base': BASE,
      '1200_code-to-int': migrationSource('ALTER TABLE customers ALTER COLUMN code TYPE int USING code::int', 'ALTER TABLE customers ALTER COLUMN code TYPE text'),
    });
    try {
      const { report, markdown } = await preflight('staging');
      const failed = (report.findings as Report[]).find((f) => f.rule === 'rehearsal-failed');
      assert.ok(failed, JSON.stringify(report.findings));
      assert.match(failed.message, /invalid input syntax for type integer: "…"/);
      assert.match(report.rehearsal.failed.error.message, /"…"/);
      assertNoRowValues(report, markdown);
    } finally {
      await writeMigrations(dir, { '1000_base': BASE, '1100_index-and-rewrite': INDEX_AND_REWRITE });
    }
  });
});

describe('full', () => {
  test('a target larger than fullDataMaxBytes is rehearsed with its schema only, with a warning saying so', async () => {
    const { report, markdown } = await preflight('production');
    const d = report.dataRehearsal;
    assert.equal(d.requested, 'full');
    assert.equal(d.mode, 'schema');
    assert.equal(d.skipped.tooLarge, true);
    assert.match(d.skipped.reason, /more than preflight\.fullDataMaxBytes \(1\.0 MiB\)/);
    assert.deepEqual(d.perMigration, [], 'nothing was timed on data');
    const finding = (report.findings as Report[]).find((f) => f.rule === 'data-rehearsal-too-large');
    assert.equal(finding?.severity, 'warning');
    assert.match(finding.message, /ran on the schema alone/);
    // The schema rehearsal itself ran as always.
    assert.equal(report.rehearsal.steps.filter((s: Report) => s.ok).length, 3);
    assert.match(markdown, /copy held the schema only/);
  });

  test('with room, all rows are copied (a fresh dump, then the latest verified backup) and the UP phase is timed on them', async () => {
    t.config.targetUrls.qa = qa.url;
    const first = await preflight('qa');
    const d = first.report.dataRehearsal;
    assert.equal(d.mode, 'full', JSON.stringify(d.skipped));
    assert.equal(d.source, 'a fresh data-only pg_dump of the target');
    assert.equal(d.seededRows, 50000);
    for (const x of d.tables as Report[]) {
      assert.equal(x.copiedRows, TARGET_ROWS[x.table as keyof typeof TARGET_ROWS], x.table);
      assert.equal(x.targetRowsFrom, 'whole table copied');
    }
    assert.deepEqual(d.foreignKeysNotValid, [], 'every row is there: the foreign keys validate again');
    const built = estimateOf(d, /^CREATE INDEX orders_total_idx/);
    assert.equal(built.scale, 1, 'the copy is the target: nothing to scale');
    assert.ok(built.sampleMs > 0);
    assertNoRowValues(first.report, first.markdown);

    // A verified backup of the target, as an apply records it: the next full rehearsal restores it instead of dumping the target.
    const env = t.config.environments.qa!;
    const backup = await createBackup({ environment: env, targetUrl: qa.url, runId: first.id, dataDir: t.config.dataDir, log: () => undefined });
    await t.control.query(insertBackup({ ...backup, runId: first.id, environment: 'qa' }).text, insertBackup({ ...backup, runId: first.id, environment: 'qa' }).values);
    const again = await t.http().post(`/v1/runs/${first.id}/preflight`).set('authorization', bearer('alice')).send({});
    assert.equal(again.status, 202, again.text);
    await t.settle();
    const second = await reportOf(first.id);
    const d2 = second.report.dataRehearsal;
    assert.equal(d2.mode, 'full');
    assert.equal(d2.source, `backup ${backup.id} (taken ${backup.createdAt})`, JSON.stringify(d2.notes));
    assert.equal(d2.seededRows, 50000);
    assert.ok((d2.perMigration as Report[]).some((m) => m.migration === '1100_index-and-rewrite' && m.statements.length === 2));
    assertNoRowValues(second.report, second.markdown);
  });
});

describe('configuration', () => {
  const configWith = async (preflight: string) => {
    const tmp = await mkdtemp(join(tmpdir(), 'sf-data-rehearsal-config-'));
    const file = join(tmp, 'migration-config.js');
    await writeFile(file, `export default { environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', preflight: ${preflight} } } };`);
    try {
      return await loadConfig({ DATABASE_URL: 'postgres://u:p@localhost:5432/control', MIGRATION_CONFIG: file });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  };
  const refused = async (preflight: string, key: string, message: RegExp) => {
    await assert.rejects(configWith(preflight), (err: unknown) => err instanceof ConfigError && err.key === key && message.test(err.message), `${preflight} → ${key}`);
  };

  test('defaults: schema only, 20000 sample rows, 1 GiB for a full copy', async () => {
    const config = await configWith('{}');
    assert.deepEqual(config.environments.staging!.preflight, { longTransactionSeconds: 60, data: 'schema', sampleRows: 20000, fullDataMaxBytes: 1024 ** 3 });
  });

  test('bad values stop start-up naming the key', async () => {
    await refused("{ data: 'everything' }", 'environments.staging.preflight.data', /must be one of "schema", "sample", "full"/);
    await refused("{ data: 'sample', sampleRows: 10 }", 'environments.staging.preflight.sampleRows', /from 100 to 1000000/);
    await refused("{ data: 'sample', sampleRows: 2.5 }", 'environments.staging.preflight.sampleRows', /integer/);
    await refused("{ data: 'full', fullDataMaxBytes: '10GB' }", 'environments.staging.preflight.fullDataMaxBytes', /bytes/);
    await refused("{ data: 'full', fullDataMaxBytes: 1000 }", 'environments.staging.preflight.fullDataMaxBytes', /from 1048576/);
    await refused("{ samplePercent: 5 }", 'environments.staging.preflight.samplePercent', /not a known setting/);
  });
});

describe('the parts on their own', () => {
  test('PostgreSQL messages keep the names of objects and lose the values of rows', () => {
    assert.equal(withoutDataValues('invalid input syntax for type integer: "secret-7"'), 'invalid input syntax for type integer: "…"');
    assert.equal(withoutDataValues('Key (email)=(a@b.c) already exists.'), 'Key (email)=(…) already exists.');
    assert.equal(withoutDataValues('value "99999999999" is out of range for type integer'), 'value "…" is out of range for type integer');
    for (const kept of [
      'null value in column "code" of relation "customers" violates not-null constraint',
      'could not create unique index "orders_total_idx"',
      'insert or update on table "items" violates foreign key constraint "items_order_id_fkey"',
    ]) assert.equal(withoutDataValues(kept), kept);
  });

  test('parallel index workers as PostgreSQL 15 plans them', () => {
    const s = { maxWorkers: 2, maintenanceWorkMemBytes: 64 * 1024 ** 2, minParallelTableScanBytes: 8 * 1024 ** 2, blockSize: 8192 };
    assert.equal(plannedIndexWorkers(4 * 1024 ** 2, s), 0, 'below min_parallel_table_scan_size');
    assert.equal(plannedIndexWorkers(65 * 1024 ** 2, s), 1, 'two would leave under 32 MB of maintenance_work_mem each');
    assert.equal(plannedIndexWorkers(65 * 1024 ** 2, { ...s, maintenanceWorkMemBytes: 1024 ** 3 }), 2);
    assert.equal(plannedIndexWorkers(10 * 1024 ** 3, { ...s, maxWorkers: 0 }), 0);
  });

  test('sampling: small or never-analyzed tables are copied from their first rows, large ones by a share of their pages', () => {
    assert.equal(samplePercent(-1, 1000), null);
    assert.equal(samplePercent(1400, 1000), null);
    assert.equal(samplePercent(1_000_000, 20_000), 3);
    assert.equal(samplePercent(1e12, 100), 1.5e-8);
  });

  test("a backup's migration history is read from its COPY block", () => {
    const script = 'SET x = 1;\nCOPY public.pgmigrations (id, name, run_on) FROM stdin;\n1\t1000_base\t2026-01-01\n2\t1100_next\t2026-01-02\n\\.\n';
    assert.deepEqual(historyFromScript(script), ['1000_base', '1100_next']);
    assert.deepEqual(historyFromScript('SET x = 1;\n'), []);
  });

  test('a migration of thousands of statements shows its slowest 200, the static estimates still joined in order', () => {
    const statements = Array.from({ length: 250 }, (_, i) => ({ sql: `INSERT ${i}`, ms: i === 7 ? 1000 : 1, msAgain: null, ok: true, locks: [] }));
    const section = dataRehearsalSection({
      requested: 'sample', mode: 'sample', skipped: null, source: 's', sampleRows: 100, seededRows: 0, seededBytes: 0, tables: [], foreignKeysNotValid: [],
      seedMs: 0, method: '', notes: [],
      perMigration: [{ migration: 'm', statements, growth: [] }],
      scaledEstimates: statements.map((s) => ({
        migration: 'm', statement: s.sql, sampleMs: s.ms, scale: 1, method: 'constant' as const, tables: [], fixedMs: 0, parallelWorkers: 0, estimatedTargetMs: s.ms, pieces: 1,
      })),
    }, { migrations: [{ migration: 'm', statements: statements.map((_, i) => ({ estimatedMs: i })) }] })!;
    assert.equal(section.perMigration[0]!.statements.length, 200);
    assert.equal(section.scaledEstimates.length, 200);
    assert.equal(section.scaledEstimates.find((e) => e.statement === 'INSERT 7')?.staticEstimateMs, 7);
    assert.ok(section.notes.some((n) => /ran 250 statements; the 200 slowest are shown/.test(n)));
  });
});
