// Index-build progress through the real apply (slow: `--slow resilience/index-progress`).
// A 3,000,000-row table; one run with a plain CREATE INDEX and a CREATE INDEX
// CONCURRENTLY (pgm.noTransaction()). While each builds, GET /v1/runs/:id
// shows the build's phase from pg_stat_progress_create_index with a ratio that
// only grows within a phase, phases in PostgreSQL's order, an ETA, and the
// metric shows the ratio. Only order and monotonicity are asserted, never times.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { applyMigrations, FIXTURE_BASE, migrationSource, writeMigrations } from '../support/migrations.js';
import { scrape } from '../metrics/scrape.js';

const ROWS = 3_000_000;

let t: TestApp;
let dir: string;

// pg_stat_progress_create_index's phases, in the order a build goes through them.
const PHASES = [
  'initializing', 'waiting for writers before build',
  'building index: scanning table', 'building index: sorting live tuples', 'building index: loading tuples in tree',
  'waiting for writers before validation', 'index validation: scanning index', 'index validation: sorting tuples', 'index validation: scanning table',
  'waiting for old snapshots', 'waiting for readers before marking dead', 'waiting for readers before dropping',
].map((p) => `create index: ${p}`);

const FILES = {
  ...FIXTURE_BASE,
  '2000_index-plain': migrationSource('CREATE INDEX big_a ON big (a)', 'DROP INDEX big_a', { comment: '// lint-ack: require-concurrent-index-creation the progress test builds a plain index on purpose' }),
  '2100_index-concurrently': migrationSource('CREATE INDEX CONCURRENTLY big_a_id ON big (a, id)', 'DROP INDEX CONCURRENTLY big_a_id', { noTransaction: true }),
};

interface Progress { migration: string | null; phase: string; done: number; total: number; unit?: string; etaSeconds: number | null }
interface Seen { progress: Progress; metric: number | undefined }

async function api(method: 'get' | 'post', path: string, who: Subject, body?: object) {
  const req = t.http()[method](path).set({ authorization: bearer(who) });
  return body === undefined ? req : req.send(body);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-index-progress-'));
  // An external snapshot stands in for pg_dump: the dump of this table is not what the test is about.
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
      backup: { method: 'external', createCommand: 'echo snap-index-progress', verifyCommand: 'true' },
      workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 }, verify: { smokeEtl: false, watchMinutes: 0 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)} } } };`;
  t = await startTestApp({ label: 'idxprog', migrationConfigSource: config });
  await writeMigrations(dir, FIXTURE_BASE);
  await applyMigrations(t.targets.staging.url, dir, 2);
  await t.targets.staging.query(`CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a FROM generate_series(1, ${ROWS}) g`);
  await t.targets.staging.query('ANALYZE big');
});

after(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test(`CREATE INDEX and CREATE INDEX CONCURRENTLY on ${ROWS} rows: the run JSON and the metric follow the build, monotonically, phase by phase, with an ETA`, async () => {
  await writeMigrations(dir, FILES);
  const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'index progress' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const id = created.body.id as string;
  const approved = await api('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
  assert.equal(approved.status, 201, approved.text);
  assert.equal((await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' })).status, 202);

  const seen: Seen[] = [];
  let settled = false;
  const done = t.settle().then(() => { settled = true; });
  let last = '';
  while (!settled) {
    const p = (await api('get', `/v1/runs/${id}`, 'vic')).body.progress as Progress | null;
    if (p && p.phase.startsWith('create index: ') && JSON.stringify(p) !== last) {
      last = JSON.stringify(p);
      seen.push({ progress: p, metric: (await scrape(t)).value('starforge_apply_progress_ratio', { environment: 'staging' }) });
    }
    await sleep(25);
  }
  await done;
  const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.equal(run.progress, null, 'cleared once the run is done');
  const indexes = (await t.targets.staging.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'big' ORDER BY 1`)).rows.map((r) => r.indexname);
  assert.deepEqual(indexes, ['big_a', 'big_a_id']);

  for (const migration of ['2000_index-plain', '2100_index-concurrently']) {
    const mine = seen.filter((s) => s.progress.migration === migration).map((s) => s.progress);
    const trace = JSON.stringify(mine.map((p) => [p.phase.slice('create index: '.length), p.done, p.total, p.etaSeconds]));
    assert.ok(mine.length >= 3, `${migration}: the build was followed (${trace})`);
    for (const p of mine) {
      assert.ok(PHASES.includes(p.phase), `${migration}: a phase of the view: ${p.phase}`);
      assert.ok(p.unit === 'blocks' || p.unit === 'tuples', p.unit);
      assert.ok(p.done >= 0 && (p.total === 0 || p.done <= p.total), `${migration}: ${trace}`);
    }
    // Phases only go forward, and within a phase the ratio only grows.
    const order = mine.map((p) => PHASES.indexOf(p.phase));
    assert.deepEqual(order, [...order].sort((a, b) => a - b), `${migration}: phases in order: ${trace}`);
    const ratio = (p: Progress) => (p.total > 0 ? p.done / p.total : 0);
    for (let i = 1; i < mine.length; i++) {
      if (mine[i]!.phase === mine[i - 1]!.phase) assert.ok(ratio(mine[i]!) >= ratio(mine[i - 1]!), `${migration}: ratio grows within ${mine[i]!.phase}: ${trace}`);
    }
    // Some phase was seen below half way and then at >= 90 % or handed on to a later phase.
    const followed = mine.some((p, i) => p.total > 0 && ratio(p) < 0.5
      && mine.slice(i + 1).some((q) => (q.phase === p.phase && ratio(q) >= 0.9) || PHASES.indexOf(q.phase) > PHASES.indexOf(p.phase)));
    assert.ok(followed, `${migration}: a phase followed from < 0.5 to >= 0.9 or to the next phase: ${trace}`);
    assert.ok(mine.some((p) => typeof p.etaSeconds === 'number' && p.etaSeconds >= 0), `${migration}: an ETA: ${trace}`);
  }
  const concurrent = seen.filter((s) => s.progress.migration === '2100_index-concurrently').map((s) => s.progress.phase);
  assert.ok(concurrent.some((p) => p.startsWith('create index: index validation')), `CONCURRENTLY shows its validation: ${JSON.stringify(concurrent)}`);
  // The gauge is read just after each sample; the step may have moved on in between, never out of [0, 1].
  for (const s of seen) if (s.metric !== undefined) assert.ok(s.metric >= 0 && s.metric <= 1, String(s.metric));
  assert.ok(seen.some((s) => s.metric !== undefined && s.metric > 0 && s.metric < 1), 'the metric showed a build part-way');
  assert.equal((await scrape(t)).value('starforge_apply_progress_ratio', { environment: 'staging' }), undefined, 'and is gone after');
});
