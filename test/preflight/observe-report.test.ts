// The observed effects in a real preflight: the service rehearses the pending
// migrations with the observer installed and judges what it saw against the
// target's tables.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { applyMigrations, migrationSource, writeMigrations } from '../support/migrations.js';

let t: TestApp;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-observe-report-'));
  const config = `export default { environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] } } } };`;
  t = await startTestApp({ label: 'observe_report', migrationConfigSource: config });
});

after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

test('a rewrite hidden in dynamic SQL fails preflight as observed; a static finding on the same table is confirmed, not doubled', async () => {
  await writeMigrations(dir, {
    '1000_orders': migrationSource('CREATE TABLE orders (id int PRIMARY KEY, total int); INSERT INTO orders SELECT g, g FROM generate_series(1, 3000) g; ANALYZE orders', 'DROP TABLE orders'),
    '1100_dynamic-type': migrationSource(
      "DO $$ DECLARE t text := 'orders'; BEGIN EXECUTE format('ALTER TABLE %I ALTER COLUMN total TYPE bigint', t); END $$",
      "DO $$ BEGIN EXECUTE 'ALTER TABLE orders ALTER COLUMN total TYPE int'; END $$",
    ),
    '1200_index-in-do': migrationSource("DO $$ BEGIN EXECUTE 'CREATE INDEX orders_total_idx ON orders (total)'; END $$", 'DROP INDEX orders_total_idx'),
  });
  await applyMigrations(t.targets.staging.url, dir, 1);
  const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'observe' });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  const { report } = (await t.http().get(`/v1/runs/${res.body.id}/preflight`).set('authorization', bearer('vic'))).body;
  assert.equal(report.outcome, 'failed');
  const findings = report.findings as Array<{ rule: string; migration: string; message: string }>;
  const rewrite = findings.filter((f) => f.rule === 'observed-table-rewrite');
  assert.deepEqual(rewrite.map((f) => f.migration), ['1100_dynamic-type']);
  assert.match(rewrite[0]!.message, /rewrote public\.orders \(about 3,000 rows on the target\): a column type changed.*ACCESS EXCLUSIVE/);
  const index = findings.filter((f) => f.migration === '1200_index-in-do');
  assert.deepEqual(index.map((f) => f.rule), ['require-concurrent-index-creation']);
  assert.match(index[0]!.message, /Confirmed in the rehearsal \(observed-blocking-lock\): .*held SHARE on public\.orders/);
  assert.ok((report.notes as string[]).some((n) => n.startsWith('Observed effects: event-triggers')), JSON.stringify(report.notes));
  // The target was only read.
  assert.equal((await t.targets.staging.query("SELECT data_type FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'total'")).rows[0].data_type, 'integer');
});
