// The rehearsal copy's DROP DATABASE goes on after the report is served: the
// requester does not wait for it, the preflight job (and idle()) does, and a
// drop that fails leaves the report as it is and the copy to the orphan sweep.
// A session holding a lock on the copy's database object holds the drop at
// the exact moment (DROP DATABASE waits for it; connections do not).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { ownerTag, runCopyPrefix, sweepOrphanedRehearsals } from '../../services/preflight/ephemeral.js';
import { cancelActiveRuns, dirMigrationConfig, bearer, startTestApp, type TestApp } from '../support/app.js';
import { adminQuery, adminUrl } from '../support/db.js';
import { migrationSource as migration, writeMigrations } from '../support/migrations.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
let t: TestApp;
let dir: string;
let holder: pg.Client | null = null;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
const status = async (runId: string) => (await t.http().get(`/v1/runs/${runId}`).set('authorization', bearer('vic'))).body.status as string;
const copyExists = async (name: string) => (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;

/** Starts a preflight and, once its copy is fully created, holds the copy's DROP DATABASE. */
async function preflightWithHeldDrop(): Promise<{ runId: string; copy: string }> {
  const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'copy drop' });
  assert.equal(res.status, 201, res.text);
  const runId = res.body.id as string;
  const prefix = runCopyPrefix(ownerTag(t.config.databaseUrl!), runId);
  // Created, and its settings written (the service's own ALTER DATABASE is done).
  const copy = await until('the rehearsal copy', async () => (await adminQuery(
    `SELECT d.datname FROM pg_database d JOIN pg_db_role_setting s ON s.setdatabase = d.oid WHERE starts_with(d.datname, $1)`, [prefix])).rows[0]?.datname as string | undefined);
  holder = new pg.Client({ connectionString: adminUrl() });
  await holder.connect();
  await holder.query('BEGIN');
  // COMMENT locks the database object (ShareUpdateExclusive) until COMMIT: DROP DATABASE (AccessExclusive) waits, a new connection does not.
  await holder.query(`COMMENT ON DATABASE ${holder.escapeIdentifier(copy)} IS 'held by copy-drop.test'`);
  return { runId, copy };
}

const waitingDrop = (copy: string) => until('the DROP DATABASE waiting on its lock', async () => (await adminQuery(
  `SELECT pid FROM pg_stat_activity WHERE query LIKE 'DROP DATABASE%' AND query LIKE '%' || $1 || '%' AND wait_event_type = 'Lock'`, [copy])).rows[0]?.pid as number | undefined);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-copy-drop-'));
  await writeMigrations(dir, {
    '1700000000001_accounts': migration("CREATE TABLE accounts (id bigint PRIMARY KEY, name text)", 'DROP TABLE accounts'),
    '1700000000002_index': migration('CREATE INDEX accounts_name ON accounts (name)', 'DROP INDEX accounts_name'),
  });
  const config = dirMigrationConfig(dir);
  t = await startTestApp({ label: 'copy_drop', migrationConfigSource: config });
});

afterEach(async () => {
  await holder?.query('ROLLBACK').catch(() => undefined);
  await holder?.end().catch(() => undefined);
  holder = null;
  await t.settle();
  await cancelActiveRuns(t);
});

after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the rehearsal copy is dropped after the report', () => {
  test('the report is served while the drop still waits; the job ends once the copy is gone', async () => {
    const { runId, copy } = await preflightWithHeldDrop();
    await waitingDrop(copy);
    // Before the copy is gone, the run already waits for approval with its report.
    assert.equal(await until('the report', async () => { const s = await status(runId); return s !== 'preflight_running' && s; }, 30_000), 'awaiting_approval');
    const report = (await t.http().get(`/v1/runs/${runId}/preflight`).set('authorization', bearer('vic'))).body.report;
    assert.equal(report.outcome, 'passed');
    assert.ok(await copyExists(copy), 'the copy is still there');
    let idle = false;
    const settled = t.settle().then(() => { idle = true; });
    await sleep(300);
    assert.equal(idle, false, 'the preflight job waits for the drop');
    await holder!.query('ROLLBACK');
    await settled;
    assert.equal(await copyExists(copy), false, 'gone once the job ended');
  });

  test('a drop that fails leaves the report and the run as they are; the orphan sweep drops the copy', async () => {
    const { runId, copy } = await preflightWithHeldDrop();
    const pid = await waitingDrop(copy);
    await until('the report', async () => (await status(runId)) === 'awaiting_approval', 30_000);
    await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
    await t.settle();
    assert.equal(await status(runId), 'awaiting_approval');
    assert.ok(await copyExists(copy), 'the failed drop left the copy');
    await holder!.query('ROLLBACK');
    const control = new pg.Pool({ connectionString: t.config.databaseUrl!, max: 2 });
    try {
      assert.deepEqual(await sweepOrphanedRehearsals(t.config.databaseUrl!, ownerTag(t.config.databaseUrl!), control, quiet), [copy]);
    } finally {
      await control.end();
    }
    assert.equal(await copyExists(copy), false);
  });
});
