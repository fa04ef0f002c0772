// Backup and restore progress (issue 17, item 6): while pg_dump runs, the run
// JSON and the metric show the bytes written of the dump's expected size; the
// next dump of the environment is calibrated on the last one; while pg_restore
// runs, the bytes of the dump it has read. Real pg_dump and pg_restore of a
// target with ~80 MB of generated rows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backupProgress, expectedDump, restoreProgress } from '../../services/apply/backup-progress.js';
import { apiClient } from '../support/api-client.js';
import type { TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, writeMigrations } from '../support/migrations.js';
import { scrape } from '../metrics/scrape.js';

let app: ApplyApp;
let t: TestApp;
let dir: string;
let backups: string;

interface Progress {
  migration: string | null; phase: string; done: number; total: number; unit?: string; etaSeconds: number | null;
  bytesPerSecond?: number; totalBasis?: string; databaseSizeBytes?: number;
}
interface Seen { status: string; progress: Progress; metric: number | undefined; eta: number | undefined }

const { api, runOf, createAndApprove } = apiClient(() => t);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads the run (and, on each new sample of `phase`, the metrics) until the background work has settled. */
async function follow(id: string, phase: string): Promise<Seen[]> {
  const seen: Seen[] = [];
  let settled = false;
  const done = t.settle().then(() => { settled = true; });
  let last = '';
  while (!settled) {
    const run = await runOf(id);
    const p = run.progress as Progress | null;
    if (p?.phase === phase && JSON.stringify(p) !== last) {
      last = JSON.stringify(p);
      const m = await scrape(t);
      seen.push({ status: run.status, progress: p, metric: m.value('starforge_apply_progress_ratio', { environment: 'staging' }), eta: m.value('starforge_apply_progress_eta_seconds', { environment: 'staging' }) });
    }
    await sleep(40);
  }
  await done;
  return seen;
}

async function approvedRun(files: Record<string, string>): Promise<string> {
  await writeMigrations(dir, { ...FIXTURE_BASE, ...files });
  const { id, approved } = await createAndApprove('backup progress');
  assert.equal(approved.status, 201, approved.text);
  return id;
}

async function applyFollowing(id: string): Promise<Seen[]> {
  const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' });
  assert.equal(res.status, 202, res.text);
  return follow(id, 'backup');
}

async function events(id: string, type: string): Promise<Array<Record<string, unknown>>> {
  return (await t.control.query('SELECT details FROM run_events WHERE run_id = $1 AND type = $2 ORDER BY id', [id, type])).rows.map((r) => r.details);
}

/** Nothing of a connection string, a password or a path in what the run JSON shows. */
function assertNoSecrets(seen: Seen[]): void {
  for (const s of seen) {
    const text = JSON.stringify(s.progress);
    for (const secret of [t.targets.staging.url, t.config.dataDir, backups, 'postgres', '127.0.0.1']) assert.ok(!text.includes(secret), `progress carries ${secret}: ${text}`);
  }
}

function assertBytesProgress(seen: Seen[], phase: string): void {
  assert.ok(seen.length >= 1, `a ${phase} progress was seen while the run worked`);
  for (const { progress: p, status } of seen) {
    assert.equal(p.phase, phase);
    assert.equal(p.migration, null);
    assert.equal(p.unit, 'bytes');
    assert.ok(p.done >= 0 && p.done <= p.total, `0 <= done <= total: ${JSON.stringify(p)}`);
    assert.equal(typeof p.bytesPerSecond, 'number');
    assert.ok(p.etaSeconds === null || (Number.isInteger(p.etaSeconds) && p.etaSeconds >= 0), `eta: ${p.etaSeconds}`);
    assert.ok(['applying', 'restoring'].includes(status), status);
  }
  assert.ok(seen.some(({ progress: p }) => p.done > 0 && p.done <= p.total), 'some sample with 0 < done <= total');
  const dones = seen.map((s) => s.progress.done);
  assert.deepEqual(dones, [...dones].sort((a, b) => a - b), 'done never goes back');
  // Each scrape follows its read of the run: the step may have moved on (or ended) in between.
  for (const s of seen) if (s.metric !== undefined) assert.ok(s.metric >= 0 && s.metric <= 1, `the ratio gauge: ${s.metric}`);
  assert.ok(seen.some((s) => s.metric !== undefined && s.metric > 0), 'the ratio gauge showed the step');
  // A scrape falls between its sample and the next: where both show an ETA, so does the gauge.
  seen.slice(0, -1).forEach((s, i) => {
    if (s.progress.etaSeconds !== null && seen[i + 1]!.progress.etaSeconds !== null) assert.ok(typeof s.eta === 'number' && s.eta >= 0, `the ETA gauge between two samples with an ETA: ${s.eta}`);
  });
  // pg_restore may read the whole file between two samples (then the index build has no ETA); pg_dump may not.
  if (phase === 'backup') assert.ok(seen.some((s) => typeof s.eta === 'number' && s.eta >= 0), 'the ETA gauge showed an ETA');
}

before(async () => {
  app = await startApplyApp({ label: 'bprog', staging: 'verify: { smokeEtl: false, watchMinutes: 0 }' });
  ({ t, dir, backups } = app);
  await writeMigrations(dir, FIXTURE_BASE);
  await applyMigrations(t.targets.staging.url, dir, 2);
  // ~80 MB of rows (a ~25 MB custom dump): pg_dump runs for a few sampling intervals. The index
  // (not in the dump's data) keeps pg_restore busy after it has read the file, so its end is sampled too.
  await t.targets.staging.query(`CREATE TABLE payload AS SELECT g AS id, md5(g::text) AS a, (g * 7)::bigint AS b FROM generate_series(1, 1000000) g`);
  await t.targets.staging.query('CREATE INDEX payload_a ON payload (a)');
});

after(() => app.close());

describe('the expected dump size', () => {
  test('calibrated on the last dump/database ratio; without one the database size; a dump outgrowing its estimate falls back to the upper bound, never done > total', () => {
    assert.deepEqual(expectedDump(1000, null), { bytes: 1000, basis: 'database-size' });
    assert.deepEqual(expectedDump(1000, { dumpBytes: 30, databaseBytes: 100 }), { bytes: 300, basis: 'previous-backup' });
    assert.equal(expectedDump(null, { dumpBytes: 30, databaseBytes: 100 }), null);
    const calibration = { dumpBytes: 30, databaseBytes: 100 };
    const within = backupProgress({ doneBytes: 150, elapsedSeconds: 3, databaseSizeBytes: 1000 }, calibration);
    assert.deepEqual({ done: within.done, total: within.total, basis: within.totalBasis, rate: within.bytesPerSecond, eta: within.etaSeconds }, { done: 150, total: 300, basis: 'previous-backup', rate: 50, eta: 3 });
    const outgrown = backupProgress({ doneBytes: 400, elapsedSeconds: 4, databaseSizeBytes: 1000 }, calibration);
    assert.deepEqual({ total: outgrown.total, basis: outgrown.totalBasis, eta: outgrown.etaSeconds }, { total: 1000, basis: 'database-size', eta: 6 });
    const pastAll = backupProgress({ doneBytes: 1200, elapsedSeconds: 4, databaseSizeBytes: 1000 }, null);
    assert.deepEqual({ done: pastAll.done, total: pastAll.total, eta: pastAll.etaSeconds }, { done: 1200, total: 1200, eta: null });
    const unknown = backupProgress({ doneBytes: 10, elapsedSeconds: 1, databaseSizeBytes: null }, null);
    assert.deepEqual({ total: unknown.total, eta: unknown.etaSeconds, basis: unknown.totalBasis }, { total: 0, eta: null, basis: undefined });
    assert.deepEqual(backupProgress({ doneBytes: 350, elapsedSeconds: 5, databaseSizeBytes: 1000, finished: true }, calibration),
      { migration: null, phase: 'backup: verifying', done: 350, total: 350, unit: 'bytes', etaSeconds: null, totalBasis: 'file-size' }, 'pg_dump ended: the file is checked');
    assert.deepEqual(restoreProgress({ doneBytes: 25, elapsedSeconds: 1, fileSizeBytes: 100 }), { migration: null, phase: 'restore', done: 25, total: 100, unit: 'bytes', etaSeconds: 3, bytesPerSecond: 25, totalBasis: 'file-size' });
  });
});

describe('backup and restore progress', () => {
  let calibratedRun = '';

  test('while pg_dump runs the run shows phase backup with 0 < done <= total of the database size, in the metric too; cleared after', async () => {
    const id = await approvedRun({ '2000_add-note': FIXTURES.addNote });
    const seen = await applyFollowing(id);
    const run = await runOf(id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assertBytesProgress(seen, 'backup');
    assertNoSecrets(seen);
    const databaseSize = seen[0]!.progress.databaseSizeBytes!;
    assert.ok(databaseSize > 50 * 1024 * 1024, `database size read before the dump: ${databaseSize}`);
    for (const { progress: p } of seen) {
      // The environment's first dump: the database size is the total, an upper bound of the compressed dump.
      assert.equal(p.totalBasis, 'database-size');
      assert.equal(p.total, databaseSize);
      assert.ok(p.done <= run.backup.sizeBytes, 'done counts bytes of the dump file');
    }
    assert.equal(run.progress, null, 'no progress once the run is done');
    assert.equal((await scrape(t)).value('starforge_apply_progress_ratio', { environment: 'staging' }), undefined, 'the gauge is gone with it');
    const [started] = await events(id, 'backup.started');
    assert.deepEqual(started, { method: 'pg_dump', databaseSizeBytes: databaseSize, expectedBytes: databaseSize, expectedBasis: 'database-size' });
    const { rows: [b] } = await t.control.query('SELECT database_size_bytes::float8 AS db, size_bytes::float8 AS size FROM backups WHERE run_id = $1', [id]);
    assert.equal(b.db, databaseSize, 'the backup records the database size, for the next dump');
    assert.ok(b.size < b.db, 'the compressed dump is smaller than the database');
  });

  test('the next dump of the environment expects the last dump/database ratio of its database size', async () => {
    const id = await approvedRun({ '2000_add-note': FIXTURES.addNote, '3000_add-score': FIXTURES.addScore });
    const seen = await applyFollowing(id);
    const run = await runOf(id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assertBytesProgress(seen, 'backup');
    const [started] = await events(id, 'backup.started') as Array<{ databaseSizeBytes: number; expectedBytes: number; expectedBasis: string }>;
    assert.equal(started!.expectedBasis, 'previous-backup');
    assert.ok(started!.expectedBytes < started!.databaseSizeBytes);
    // The same data as last time: the calibrated estimate is close to what the dump weighed.
    const error = Math.abs(started!.expectedBytes - run.backup.sizeBytes) / run.backup.sizeBytes;
    assert.ok(error < 0.2, `expected ${started!.expectedBytes}, the dump is ${run.backup.sizeBytes} bytes`);
    assert.ok(seen.some((s) => s.progress.totalBasis === 'previous-backup' && s.progress.total === started!.expectedBytes), JSON.stringify(seen.map((s) => s.progress)));
    calibratedRun = id;
  });

  test('while pg_restore runs the run shows phase restore: the bytes of the dump it has read of the file size; cleared after', async () => {
    assert.ok(calibratedRun, 'runs after the previous test');
    const asked = await api('post', `/v1/runs/${calibratedRun}/rollback`, 'olga', { mode: 'restore', confirm: 'staging', reason: 'progress test' });
    assert.equal(asked.status, 202, asked.text);
    const approved = await api('post', `/v1/runs/${calibratedRun}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: asked.body.planDigest });
    assert.equal(approved.status, 201, approved.text);
    const seen = await follow(calibratedRun, 'restore');
    const run = await runOf(calibratedRun);
    assert.equal(run.status, 'restored', JSON.stringify(run.error));
    assertBytesProgress(seen, 'restore');
    assertNoSecrets(seen);
    for (const { progress: p } of seen) {
      assert.equal(p.totalBasis, 'file-size');
      assert.equal(p.total, run.backup.sizeBytes, 'of the dump file');
    }
    assert.equal(run.progress, null);
    assert.equal((await t.targets.staging.query('SELECT count(*)::int AS n FROM payload')).rows[0].n, 1_000_000);
  });
});
