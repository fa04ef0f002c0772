// `sfm runs wait` shows a long step's progress: the backup's bytes, rate and
// ETA as pg_dump writes (no event marks those samples, so a waiting client on
// the stream re-reads the working run), and index builds and restores in the
// same line format.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { progressLine } from '../../src/cli/wait.js';
import { bearer, startTestApp, type TestApp } from '../support/app.js';
import { applyMigrations, FIXTURE_BASE, FIXTURES, writeMigrations } from '../support/migrations.js';
import { exits, listen, sfm } from './helpers.js';

const base = { migration: null, etaSeconds: null };
const MiB = 1024 * 1024;

describe('progress lines', () => {
  test('bytes with the total\'s basis (~ calibrated, "at most" the database size), rate and ETA; blocks as a percentage; migrations as i/n', () => {
    const backup = { ...base, phase: 'backup', unit: 'bytes' as const, done: 30 * MiB, total: 120 * MiB, bytesPerSecond: 10 * MiB, etaSeconds: 9 };
    assert.equal(progressLine({ status: 'applying', progress: { ...backup, totalBasis: 'database-size' } }, undefined),
      'status=applying progress=- backup 25% 30.0 MiB of at most 120.0 MiB at 10.0 MiB/s eta<=9s');
    assert.equal(progressLine({ status: 'applying', progress: { ...backup, totalBasis: 'previous-backup' } }, undefined),
      'status=applying progress=- backup 25% 30.0 MiB of ~120.0 MiB at 10.0 MiB/s eta=9s');
    assert.equal(progressLine({ status: 'restoring', progress: { ...backup, phase: 'restore', totalBasis: 'file-size' } }, undefined),
      'status=restoring progress=- restore 25% 30.0 MiB of 120.0 MiB at 10.0 MiB/s eta=9s');
    assert.equal(progressLine({ status: 'applying', progress: { ...backup, total: 0, bytesPerSecond: 0, etaSeconds: null } }, undefined),
      'status=applying progress=- backup 30.0 MiB');
    assert.equal(progressLine({ status: 'applying', progress: { ...base, migration: '2000_idx', phase: 'create index: building index: scanning table', unit: 'blocks', done: 40, total: 100, etaSeconds: 3 } }, undefined),
      'status=applying progress=2000_idx create index: building index: scanning table 40% eta=3s');
    assert.equal(progressLine({ status: 'applying', progress: { ...base, migration: '2000_idx', phase: 'migrating', unit: 'migrations', done: 1, total: 3 } }, undefined),
      'status=applying progress=2000_idx migration 2/3');
    assert.equal(progressLine({ status: 'succeeded', progress: backup }, undefined), 'status=succeeded', 'no progress once the run stopped working');
  });
});

describe('sfm runs wait during a backup', () => {
  let t: TestApp;
  let url: string;
  let dir: string;
  let backups: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sf-wait-progress-'));
    backups = await mkdtemp(join(tmpdir(), 'sf-wait-progress-backups-'));
    const config = `export default { environments: {
      staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
        backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 },
        verify: { smokeEtl: false, watchMinutes: 0 } },
      production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)} } } };`;
    t = await startTestApp({ label: 'cli_wait_progress', migrationConfigSource: config, env: { EVENTS_POLL_MS: '100' } });
    url = await listen(t);
    await writeMigrations(dir, FIXTURE_BASE);
    await applyMigrations(t.targets.staging.url, dir, 2);
    await t.targets.staging.query(`CREATE TABLE payload AS SELECT g AS id, md5(g::text) AS a, (g * 7)::bigint AS b FROM generate_series(1, 1000000) g`);
  });

  after(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
    await rm(backups, { recursive: true, force: true });
  });

  test('on the stream it prints the backup\'s progress as pg_dump writes, though no event arrives meanwhile', async () => {
    await writeMigrations(dir, { ...FIXTURE_BASE, '2000_add-note': FIXTURES.addNote });
    const created = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'wait progress' });
    assert.equal(created.status, 201, created.text);
    await t.settle();
    const id = created.body.id as string;
    const approved = await t.http().post(`/v1/runs/${id}/approvals`).set('authorization', bearer('bob')).send({ role: 'engineering', decision: 'approve' });
    assert.equal(approved.status, 201, approved.text);

    let applied: Promise<{ status: number; text: string }> | undefined;
    const res = await sfm(url, ['runs', 'wait', id, '--until', 'done', '--interval', '300ms', '--timeout', '2m'], {
      as: 'vic',
      onStderr: (soFar) => {
        if (!applied && soFar.includes('status=')) applied = Promise.resolve(t.http().post(`/v1/runs/${id}/apply`).set('authorization', bearer('olga')).send({ confirm: 'staging' }));
      },
    });
    const apply = await applied;
    assert.equal(apply?.status, 202, apply?.text);
    exits(res, 0, 'wait for the apply');
    assert.ok(!res.stderr.includes('note:'), 'followed the stream, no fallback to polling');
    const backupLines = res.stderr.split('\n').filter((l) => / progress=- backup /.test(l));
    const LINE = /^status=applying phase=backup\.started progress=- backup (\d+)% [\d.]+ (B|KiB|MiB) of at most [\d.]+ MiB( at [\d.]+ (B|KiB|MiB)\/s)?( eta<=\d+s)?$/;
    for (const line of backupLines) assert.match(line, LINE);
    const percents = backupLines.map((l) => Number(LINE.exec(l)![1]));
    assert.ok(backupLines.length >= 2, `the backup's progress moved on stderr between events:\n${res.stderr}`);
    assert.deepEqual(percents, [...percents].sort((a, b) => a - b), 'the percentage only grows');
    assert.ok(backupLines.some((l) => / at [\d.]+ (KiB|MiB)\/s eta<=\d+s$/.test(l)), `a line with the rate and the ETA:\n${backupLines.join('\n')}`);
    assert.ok(!res.stderr.includes('postgres://') && !res.stderr.includes(backups), 'no URL or path in the progress');
  });
});
