// Calibrated estimates (issue 16 item 8, and "Tables touched" of item 9),
// against real PostgreSQL: row counts that stale statistics cannot fool
// (exact, bounded at 1,000,000), no index listed as a table, index builds
// estimated from a timed sample of the target's table, this environment's
// measured history recorded at apply and used by the next preflight, the
// backup in the total the scheduler fits into windows, and a finding for a
// statement estimated past statement_timeout. Speed itself is measured in
// the slow test (test/resilience/index-estimate.slow.test.ts) and the bench.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { timeoutFindings } from '../../services/preflight/estimate/timeouts.js';
import { parseMigrationConfig } from '../../services/environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import type { ImpactEstimate } from '../../services/preflight/report.js';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { applyMigrations, migrationSource, writeMigrations } from '../support/migrations.js';

let t: TestApp;
let dir: string;
let backups: string;

async function api(method: 'get' | 'post', path: string, who: Subject, body?: object) {
  const req = t.http()[method](path).set({ authorization: bearer(who) });
  return body === undefined ? req : req.send(body);
}
const runOf = async (id: string) => (await api('get', `/v1/runs/${id}`, 'vic')).body;

async function preflight(environment = 'staging'): Promise<{ id: string; status: string; report: any }> {
  const created = await api('post', '/v1/runs', 'alice', { environment, description: 'estimates' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const run = await runOf(created.body.id);
  const report = (await api('get', `/v1/runs/${run.id}/preflight`, 'vic')).body.report;
  return { id: run.id, status: run.status, report };
}

const BASE = {
  '1000_events': migrationSource(
    `CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, at timestamptz NOT NULL) WITH (autovacuum_enabled = false);
     INSERT INTO events SELECT g, 'kind-' || (g % 97), now() - g * interval '1 second' FROM generate_series(1, 60000) g;
     CREATE INDEX events_at_idx ON events (at)`,
    'DROP TABLE events',
  ),
  // Analyzed with 2 rows, then filled: reltuples says 2, the table holds 1,000.
  '1100_scratch': migrationSource(
    `CREATE TABLE scratch (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false);
     INSERT INTO scratch VALUES (1, 'a'), (2, 'b'); ANALYZE scratch;
     INSERT INTO scratch SELECT g, 'n' FROM generate_series(3, 1000) g`,
    'DROP TABLE scratch',
  ),
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-estimates-'));
  backups = await mkdtemp(join(tmpdir(), 'sf-estimates-backups-'));
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, verify: { watchMinutes: 0 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, statementTimeoutMs: 5,
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} } } } };`;
  t = await startTestApp({ label: 'estimates', migrationConfigSource: config });
  await writeMigrations(dir, BASE);
  for (const db of [t.targets.staging, t.targets.production]) await applyMigrations(db.url, dir, 2);
});

after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
  await rm(backups, { recursive: true, force: true });
});

afterEach(async () => {
  await t.settle();
  await t.control.query(`UPDATE runs SET status = 'cancelled' WHERE status NOT IN ('cancelled', 'succeeded', 'failed', 'rejected', 'rolled_back', 'restored', 'preflight_failed', 'verification_failed', 'degraded')`);
});

describe('tables touched', () => {
  test('stale statistics: exact counts (the table analyzed at 2 rows holds 1,000), and no index listed as a table', async () => {
    await writeMigrations(dir, {
      ...BASE,
      '2000_drop-scratch': migrationSource('DROP TABLE scratch', 'CREATE TABLE scratch (id int PRIMARY KEY, note text)'),
      '2100_events-kind': migrationSource('CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind)', 'DROP INDEX CONCURRENTLY events_kind_idx', { noTransaction: true }),
      '2200_reindex': migrationSource('REINDEX INDEX CONCURRENTLY events_at_idx', 'SELECT 1', { noTransaction: true }),
      '2300_drop-at': migrationSource('DROP INDEX CONCURRENTLY events_at_idx', 'CREATE INDEX CONCURRENTLY events_at_idx ON events (at)', { noTransaction: true }),
    });
    const { status, report } = await preflight();
    assert.ok(['awaiting_approval', 'preflight_failed'].includes(status));
    const tables = report.impact.tables as Array<{ table: string; rows: number; rowsSource: string; exists: boolean }>;
    assert.deepEqual(tables.map((x) => x.table), ['public.events', 'public.scratch'], 'indexes (events_kind_idx, events_at_idx) are not tables');
    const scratch = tables.find((x) => x.table === 'public.scratch')!;
    assert.equal(scratch.rows, 1000);
    assert.equal(scratch.rowsSource, 'count');
    const md = (await api('get', `/v1/runs/${report.runId}/preflight?format=md`, 'vic')).text;
    assert.match(md, /\| public\.scratch \| 1,000 \| /);
    assert.doesNotMatch(md, /\| public\.events_(kind|at)_idx \|/);
    // REINDEX of an index is work on its table: estimated from the events table, not zero.
    const reindex = report.impact.migrations.find((m: { migration: string }) => m.migration === '2200_reindex');
    assert.ok(reindex.statements[0].estimatedMs > 0, JSON.stringify(reindex));
  });

  test('a count stops at 1,000,000 and says so ("≥1,000,000")', async () => {
    await t.targets.staging.query(`CREATE TABLE big (id int) WITH (autovacuum_enabled = false); INSERT INTO big SELECT generate_series(1, 1000100)`);
    try {
      await writeMigrations(dir, { ...BASE, '2000_drop-big': migrationSource('DROP TABLE big', 'CREATE TABLE big (id int)') });
      const { report } = await preflight();
      const big = report.impact.tables.find((x: { table: string }) => x.table === 'public.big');
      assert.deepEqual([big.rows, big.rowsSource], [1_000_000, 'count-bounded']);
      const md = (await api('get', `/v1/runs/${report.runId}/preflight?format=md`, 'vic')).text;
      assert.match(md, /\| public\.big \| ≥1,000,000 \| /);
    } finally {
      await t.targets.staging.query('DROP TABLE IF EXISTS big');
    }
  });
});

describe('calibrated estimates', () => {
  test('an index build is estimated from a timed sample of the table; the backup is in the total; measured durations are recorded at apply and calibrate the next preflight', async () => {
    await writeMigrations(dir, { ...BASE, '2000_events-kind': migrationSource('CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind)', 'DROP INDEX CONCURRENTLY events_kind_idx', { noTransaction: true }) });
    const first = await preflight();
    assert.equal(first.status, 'awaiting_approval', JSON.stringify(first.report.findings));
    const impact = first.report.impact;
    const build = impact.migrations[0].statements[0];
    assert.match(build.basis, /^sampled \d+ of \d+ pages \(\d+ rows, about 60000 in all\)/);
    assert.match(build.basis, /sort by \(kind\)/);
    assert.deepEqual(impact.calibration.sampledTables, ['public.events']);
    assert.equal(impact.calibration.history, null, 'no measured history yet');
    assert.equal(impact.backup.method, 'pg_dump');
    assert.equal(impact.backup.calibration, 'default');
    assert.ok(impact.backup.databaseBytes > 0 && impact.backup.estimatedMs > 0);
    assert.equal(impact.migrationsEstimatedMs, impact.migrations.reduce((s: number, m: { estimatedMs: number }) => s + m.estimatedMs, 0));
    assert.equal(impact.totalEstimatedMs, impact.migrationsEstimatedMs + impact.backup.estimatedMs, 'the scheduler fits backup and migrations');
    assert.match(impact.assumptions, /Calibration used: timed samples of public\.events on the target; no measured history of staging yet; backup from a default rate/);

    // Applied: each migration's measured duration beside its estimate, and the backup's, in the control database.
    assert.equal((await api('post', `/v1/runs/${first.id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' })).status, 201);
    assert.equal((await api('post', `/v1/runs/${first.id}/apply`, 'olga', { confirm: 'staging' })).status, 202);
    await t.settle();
    assert.equal((await runOf(first.id)).status, 'succeeded');
    const timing = (await t.control.query('SELECT environment, work_ms::float8 AS work, estimated_ms::float8 AS estimated, measured_ms::float8 AS measured FROM migration_timings WHERE run_id = $1', [first.id])).rows;
    assert.equal(timing.length, 1);
    assert.equal(timing[0].environment, 'staging');
    assert.equal(timing[0].work, impact.migrations[0].workMs);
    assert.equal(timing[0].estimated, impact.migrations[0].estimatedMs);
    assert.ok(timing[0].measured > 0);
    const backup = (await t.control.query('SELECT database_bytes::float8 AS bytes, duration_ms::float8 AS ms FROM backup_timings WHERE environment = $1', ['staging'])).rows;
    assert.equal(backup.length, 1);
    assert.equal(backup[0].bytes, impact.backup.databaseBytes);
    assert.ok(backup[0].ms > 0);

    // History that says this server takes twice the model's prediction: the next estimate doubles.
    await t.control.query(`UPDATE migration_timings SET work_ms = 1000, fixed_ms = 0, measured_ms = 2000 WHERE run_id = $1`, [first.id]);
    await writeMigrations(dir, { ...BASE, '2000_events-kind': migrationSource('CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind)', 'DROP INDEX CONCURRENTLY events_kind_idx', { noTransaction: true }), '2100_events-at-kind': migrationSource('CREATE INDEX CONCURRENTLY events_at_kind_idx ON events (at, kind)', 'DROP INDEX CONCURRENTLY events_at_kind_idx', { noTransaction: true }) });
    const second = await preflight();
    const calibrated = second.report.impact;
    assert.deepEqual(calibrated.calibration.history, { ratio: 2, migrations: 1 });
    const m = calibrated.migrations.find((x: { migration: string }) => x.migration === '2100_events-at-kind');
    assert.ok(Math.abs(m.statements[0].estimatedMs - 2 * m.workMs) <= 1, `${m.statements[0].estimatedMs} is twice the model's ${m.workMs}`);
    assert.equal(calibrated.backup.calibration, 'history');
    assert.match(calibrated.backup.basis, /measured over the last 1 backup\(s\) of staging/);
    assert.match(calibrated.calibration.summary, /× 2 from 1 measured migration\(s\) of staging; backup from measured backups/);
    const md = (await api('get', `/v1/runs/${second.id}/preflight?format=md`, 'vic')).text;
    assert.match(md, /Estimated apply time: .* \(backup .*, migrations .*\)/);
    assert.match(md, /Estimates calibrated by: timed samples of public\.events/);
  });

  test('a statement estimated past statementTimeoutMs is a finding: an error when far past it', async () => {
    await writeMigrations(dir, { ...BASE, '2000_events-kind': migrationSource('CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind)', 'DROP INDEX CONCURRENTLY events_kind_idx', { noTransaction: true }) });
    // production: statementTimeoutMs 5, far below any build of a 60,000-row index.
    const { status, report } = await preflight('production');
    assert.equal(status, 'preflight_failed');
    const finding = report.findings.find((f: { rule: string }) => f.rule === 'estimate-exceeds-statement-timeout');
    assert.ok(finding, JSON.stringify(report.findings));
    assert.equal(finding.severity, 'error');
    assert.equal(finding.migration, '2000_events-kind');
    assert.match(finding.message, /longer than its statement_timeout \(statementTimeoutMs: 5 ms\)/);
  });

  test('warning between the timeout and twice it, error beyond, nothing within it', () => {
    const env = parseMigrationConfig({ environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', statementTimeoutMs: 60_000 } } }, PROJECT_ROOT).staging!;
    const statement = (estimatedMs: number) => ({ statement: `s${estimatedMs}`, lock: 'SHARE', tables: ['public.t'], rewritesTable: false, buildsIndex: true, scansTable: false, estimatedMs, basis: 'sample' });
    const impact: ImpactEstimate = {
      tables: [], totalEstimatedMs: 0, assumptions: '',
      migrations: [{ migration: 'm', transactional: true, rehearsalMs: 1, estimatedMs: 0, strongestLock: 'SHARE', statements: [statement(59_000), statement(90_000), statement(130_000)] }],
    };
    assert.deepEqual(timeoutFindings(impact, env).map((f) => [f.statement, f.severity]), [['s90000', 'warning'], ['s130000', 'error']]);
  });
});
