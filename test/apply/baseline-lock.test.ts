// The target's schema fingerprint taken before the apply (what a rollback
// down is compared with) deparses views and indexes, which waits for ACCESS
// SHARE on their tables. A session holding ACCESS EXCLUSIVE on a table the
// run does not touch must not hold the apply up for as long as it holds the
// lock: the read gives up after a bounded wait, the apply goes on, and the
// report says the baseline was not recorded.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { apiClient } from '../support/api-client.js';
import type { TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { applyMigrations, migrationSource as migration, writeMigrations } from '../support/migrations.js';

let app: ApplyApp;
let t: TestApp;

const BASE = {
  '1000_archive': migration('CREATE TABLE archive (id int PRIMARY KEY, body text); CREATE INDEX archive_body_idx ON archive (body); CREATE VIEW archive_recent AS SELECT id FROM archive', 'DROP VIEW archive_recent; DROP TABLE archive'),
};
const PENDING = { ...BASE, '2000_notes': migration('CREATE TABLE notes (id int PRIMARY KEY)', 'DROP TABLE notes') };

const { api, createAndApprove } = apiClient(() => t);

before(async () => {
  app = await startApplyApp({
    label: 'baseline_lock',
    // An external backup takes no lock on the target; no ETL, no watch.
    staging: `backup: { method: 'external', createCommand: 'echo baseline-lock-backup', verifyCommand: 'true' }, verify: { smokeEtl: false, watchMinutes: 0 }`,
  });
  t = app.t;
  await writeMigrations(app.dir, BASE);
  await applyMigrations(t.targets.staging.url, app.dir, 1);
  await writeMigrations(app.dir, PENDING);
});

after(async () => app?.close());

test('a lock held on an untouched table delays the pre-apply schema read a bounded time; the apply succeeds and the report says the baseline is missing', async () => {
  const { id, approved } = await createAndApprove('baseline behind a lock');
  assert.ok(['approved', 'scheduled'].includes(approved.body.status), approved.text);
  const holder = new pg.Client({ connectionString: t.targets.staging.url });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE archive IN ACCESS EXCLUSIVE MODE');
  try {
    const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging', reason: 'test' });
    assert.equal(res.status, 202, res.text);
    // Still holding the lock: without the bound the run would sit in applying until it is let go.
    let run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
    for (let i = 0; i < 300 && !['succeeded', 'failed', 'verification_failed', 'degraded'].includes(run.status); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
    }
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report as { notes: string[] };
    assert.ok(report.notes.some((n) => /schema before the apply could not be recorded \(a session held a lock/.test(n)), JSON.stringify(report.notes));
    const notes = await t.targets.staging.query(`SELECT to_regclass('public.notes') IS NOT NULL AS present`);
    assert.equal(notes.rows[0].present, true);
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
  }
  await t.settle();
});
