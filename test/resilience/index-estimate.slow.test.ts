// Index-build estimates against the real thing (issue 16 item 8): a table of
// 1,200,000 rows on the target, a pending CREATE INDEX CONCURRENTLY, and the
// preflight's estimate of that migration compared with the duration the apply
// measured when it built the index on the same server. The estimate must be
// within 1.5x of the measurement either way (the old model, a fixed 25 MiB/s
// over pg_total_relation_size, was 2.8-4.3x too long). Later preflights of the
// environment are calibrated by those measurements.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { migrationSource, writeMigrations } from '../support/migrations.js';

const ROWS = 1_200_000;
const TOLERANCE = 1.5;

let t: TestApp;
let dir: string;
let backups: string;
/** The migrations written so far: applied ones stay in the directory. */
const files: Record<string, string> = {};

async function api(method: 'get' | 'post', path: string, who: Subject, body?: object) {
  const req = t.http()[method](path).set({ authorization: bearer(who) });
  return body === undefined ? req : req.send(body);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-index-estimate-'));
  backups = await mkdtemp(join(tmpdir(), 'sf-index-estimate-backups-'));
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, verify: { watchMinutes: 0 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)} } } };`;
  t = await startTestApp({ label: 'index_estimate', migrationConfigSource: config });
  // Applied outside the service, as a project's existing data would be.
  await t.targets.staging.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL, score int NOT NULL, bio text);
    INSERT INTO accounts SELECT g, 'user' || (random() * 1e9)::bigint || '@example.com', now() - random() * interval '1000 days', (random() * 1000)::int, repeat(md5(g::text), 2)
    FROM generate_series(1, ${ROWS}) g`);
  await t.targets.staging.query('VACUUM ANALYZE accounts');
});

after(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (backups) await rm(backups, { recursive: true, force: true });
});

async function estimateAndMeasure(name: string, sql: string, down: string): Promise<{ estimatedMs: number; measuredMs: number; basis: string; calibration: unknown }> {
  files[name] = migrationSource(sql, down, { noTransaction: true });
  await writeMigrations(dir, files);
  const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: `index estimate ${name}` });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const id = created.body.id as string;
  const report = (await api('get', `/v1/runs/${id}/preflight`, 'vic')).body.report;
  assert.equal(report.outcome, 'passed', JSON.stringify(report.findings));
  const impact = report.impact.migrations.find((m: { migration: string }) => m.migration === name);
  assert.equal((await api('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' })).status, 201);
  assert.equal((await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' })).status, 202);
  await t.settle();
  const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const applied = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report.migrations.find((m: { name: string }) => m.name === name);
  return { estimatedMs: impact.estimatedMs, measuredMs: applied.durationMs, basis: impact.statements[0].basis, calibration: report.impact.calibration };
}

// Three builds of the same kind of index, each preflighted then applied: the
// median ratio is what is judged (the server is shared by other suites, so a
// single build can run in a quiet or a busy moment that its preflight did not
// see). The first estimate has no history; the later ones use it.
test(`a CREATE INDEX CONCURRENTLY on ${ROWS} rows is estimated within ${TOLERANCE}x of the build the apply measured`, { timeout: 1_200_000 }, async () => {
  const ratios: number[] = [];
  for (const [i, suffix] of ['a', 'b', 'c'].entries()) {
    const m = await estimateAndMeasure(`${2000 + i * 100}_accounts-email-${suffix}`, `CREATE INDEX CONCURRENTLY accounts_email_${suffix}_idx ON accounts (email)`, `DROP INDEX CONCURRENTLY accounts_email_${suffix}_idx`);
    const ratio = m.estimatedMs / m.measuredMs;
    ratios.push(ratio);
    process.stderr.write(`index estimate ${suffix}: estimated ${m.estimatedMs} ms, measured ${m.measuredMs} ms (x${ratio.toFixed(2)}); ${(m.calibration as { summary: string }).summary}; ${m.basis}\n`);
    assert.match(m.basis, /^sampled 2048 of \d+ pages/, 'estimated from a timed sample of the table');
    const history = (m.calibration as { history: { migrations: number } | null }).history;
    // The measurements are history: each later preflight of staging is calibrated by the earlier builds.
    assert.equal(history?.migrations ?? 0, i);
  }
  const median = [...ratios].sort((a, b) => a - b)[1]!;
  assert.ok(median <= TOLERANCE && median >= 1 / TOLERANCE, `estimate/measured ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}: median x${median.toFixed(2)}`);
});
