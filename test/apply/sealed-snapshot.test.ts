import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { apiClient } from '../support/api-client.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { applyMigrations } from '../support/migrations.js';
import { cancelUnfinishedRuns, emptyPublicSchema } from '../support/reset.js';
import { APPROVED_COLUMNS, APPROVED_NAMES, BASE_NAMES, filesUnder, writeTree } from '../support/sealed-tree.js';

// Issue 15, items 1-3: whatever happens to the migrations directory once an
// apply has passed its drift check (the worker pause, the whole pg_dump), only
// the approved bytes run, and `down` reverts exactly them. Each change is made
// at exactly that moment: the pause command waits for the test, and pg_dump
// waits on a table lock the test holds.
let t: TestApp;
let tree: string;
let dir: string;
let hooks: string;
let dataDir: string;
let backups: string;

const { api, createAndApprove } = apiClient(() => t);
const target = () => t.targets.staging;

async function columns(table: string): Promise<string[]> {
  const res = await target().query(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`, [table]);
  return res.rows.map((r) => r.column_name as string);
}
const appliedNames = async () => (await target().query('SELECT name FROM pgmigrations ORDER BY run_on, id')).rows.map((r) => r.name as string);
const evilTable = async () => (await target().query(`SELECT to_regclass('public.evil') AS t`)).rows[0].t;

async function approvedRun(): Promise<{ id: string; migrations: Array<{ name: string; sha256: string }> }> {
  const { id, approved } = await createAndApprove('sealed');
  assert.ok(['approved', 'scheduled'].includes(approved.body.status), approved.text);
  return { id, migrations: approved.body.migrations };
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for ${what}`);
}

type Moment = 'pause' | 'pg_dump';

/** Starts the apply and runs `change` while it is in `moment`; resolves once the apply has finished. */
async function applyChangingDisk(id: string, moment: Moment, change: () => Promise<void>): Promise<void> {
  if (moment === 'pause') {
    await writeFile(join(hooks, 'hold'), '');
    const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging', reason: 'test' });
    assert.equal(res.status, 202, res.text);
    await waitFor('the pause command', async () => existsSync(join(hooks, 'paused')));
    await change();
    await writeFile(join(hooks, 'go'), '');
  } else {
    const holder = new pg.Client({ connectionString: target().url, application_name: 'test-lock-holder' });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE');
      const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging', reason: 'test' });
      assert.equal(res.status, 202, res.text);
      await waitFor('pg_dump to wait on the lock', async () => (await target().query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'starforge-run-%-backup' AND wait_event_type = 'Lock'`,
      )).rows[0].n === 1);
      await change();
    } finally {
      await holder.query('COMMIT').catch(() => undefined);
      await holder.end();
    }
  }
  await t.settle();
}

const write = (path: string, text: string) => writeFile(join(tree, path), text);
const move = (from: string, to: string) => rename(join(tree, from), join(tree, to));
const remove = (path: string) => unlink(join(tree, path));

// A file added, edited, removed or renamed: a `.js` migration, a `.sql` migration and the helper the `.js` one imports.
const CHANGES: Record<string, () => Promise<void>> = {
  // Added files sort between the applied migrations and the approved ones: the runner's "next pending on disk".
  'js added': () => write('migrations/1500_evil.js', `export const up = (pgm) => { pgm.sql('CREATE TABLE evil (id int)'); };\nexport const down = (pgm) => { pgm.sql('DROP TABLE evil'); };\n`),
  'js edited': () => write('migrations/2000_add-note.js', `export const up = (pgm) => { pgm.sql('ALTER TABLE accounts ADD COLUMN evil text'); };\nexport const down = (pgm) => { pgm.sql('ALTER TABLE accounts DROP COLUMN evil'); };\n`),
  'js removed': () => remove('migrations/2000_add-note.js'),
  'js renamed': () => move('migrations/2000_add-note.js', 'migrations/2050_add-note.js'),
  'sql added': () => write('migrations/1500_evil.sql', 'CREATE TABLE evil (id int);\n'),
  'sql edited': () => write('migrations/2100_add-score.sql', '-- Up Migration\nALTER TABLE accounts ADD COLUMN evil int;\n-- Down Migration\nALTER TABLE accounts DROP COLUMN evil;\n'),
  'sql removed': () => remove('migrations/2100_add-score.sql'),
  'sql renamed': () => move('migrations/2100_add-score.sql', 'migrations/2150_add-score.sql'),
  // The migration imports '../lib/columns': a columns.js put beside columns.mjs is what the loader would now pick.
  'helper added': () => write('lib/columns.js', `export const column = 'evil';\n`),
  'helper edited': () => write('lib/columns.mjs', `export const column = 'evil';\n`),
  'helper removed': () => remove('lib/columns.mjs'),
  'helper renamed': () => move('lib/columns.mjs', 'lib/columns-v2.mjs'),
};

before(async () => {
  tree = await mkdtemp(join(tmpdir(), 'sf-sealed-tree-'));
  dir = join(tree, 'migrations');
  hooks = await mkdtemp(join(tmpdir(), 'sf-sealed-hooks-'));
  dataDir = await mkdtemp(join(tmpdir(), 'sf-sealed-data-'));
  backups = join(dataDir, 'backups');
  // Held by the test (a 'hold' file), the pause command says it is running and waits until the test says go; otherwise it returns at once.
  await writeFile(join(hooks, 'pause.sh'), `[ -f "${hooks}/hold" ] || exit 0\ntouch "${hooks}/paused"\nwhile [ ! -f "${hooks}/go" ]; do sleep 0.02; done\nrm -f "${hooks}/go" "${hooks}/paused" "${hooks}/hold"\n`);
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
      lockTimeoutMs: 2000, backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)}, lockWaitTimeoutMs: 60000 },
      workers: { pause: { method: 'command', pause: ${JSON.stringify(`sh ${join(hooks, 'pause.sh')}`)}, resume: 'true' }, pauseTimeoutMs: 60000 },
      verify: { smokeEtl: false, watchMinutes: 0.005 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)} } } };`;
  t = await startTestApp({ label: 'sealed', migrationConfigSource: config, env: { DATA_DIR: dataDir } });
});

after(async () => {
  await t.close();
  for (const d of [tree, hooks, dataDir]) await rm(d, { recursive: true, force: true });
});

afterEach(async () => {
  await cancelUnfinishedRuns(t);
  await emptyPublicSchema(target());
  for (const f of ['go', 'hold', 'paused']) await rm(join(hooks, f), { force: true });
});

describe('only the approved bytes run, whatever happens to the migrations directory during the apply', () => {
  for (const moment of ['pause', 'pg_dump'] as const) {
    for (const [what, change] of Object.entries(CHANGES)) {
      test(`${what} during the ${moment === 'pause' ? 'worker pause' : 'pg_dump backup'}: the approved bytes run; ledger, report and down agree with the target`, async () => {
        await writeTree(tree);
        await applyMigrations(target().url, dir, 2);
        const { id, migrations } = await approvedRun();
        assert.deepEqual(migrations.map((m) => m.name), APPROVED_NAMES);

        await applyChangingDisk(id, moment, change);
        const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
        assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
        assert.deepEqual(await columns('accounts'), APPROVED_COLUMNS, 'exactly the approved columns');
        assert.equal(await evilTable(), null, 'the added migration did not run');
        assert.deepEqual(await appliedNames(), [...BASE_NAMES, ...APPROVED_NAMES]);
        const ledger = await t.control.query('SELECT name, sha256 FROM migration_ledger WHERE run_id = $1 ORDER BY name', [id]);
        assert.deepEqual(ledger.rows, migrations, 'the ledger holds the approved names and checksums');
        const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
        assert.deepEqual([report.outcome, report.migrations.map((m: { name: string; sha256: string }) => [m.name, m.sha256])], ['succeeded', migrations.map((m) => [m.name, m.sha256])]);
        assert.ok(report.verification.every((c: { status: string }) => c.status === 'pass' || c.status === 'skip'), JSON.stringify(report.verification));
        assert.deepEqual(await filesUnder(join(dataDir, 'sealed-runs')), [], 'the run-private copy is removed');

        // down runs from the same snapshot: the disk still has the change.
        const asked = await api('post', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'staging', reason: 'sealed down' });
        assert.equal(asked.status, 202, asked.text);
        assert.equal((await api('post', `/v1/runs/${id}/rollback/approvals`, 'carol', { decision: 'approve', planDigest: asked.body.planDigest })).status, 201);
        await t.settle();
        const back = (await api('get', `/v1/runs/${id}`, 'vic')).body;
        assert.equal(back.status, 'rolled_back', JSON.stringify(back.error));
        assert.deepEqual(await columns('accounts'), ['id', 'email']);
        assert.equal(await evilTable(), null);
        assert.deepEqual(await appliedNames(), BASE_NAMES);
        assert.equal((await t.control.query('SELECT count(*)::int AS n FROM migration_ledger WHERE run_id = $1', [id])).rows[0].n, 0);
        const rollback = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.rollback;
        assert.deepEqual(rollback.reverted.map((m: { name: string }) => m.name), [...APPROVED_NAMES].reverse());
        assert.deepEqual(await filesUnder(join(dataDir, 'sealed-runs')), []);
      });
    }
  }
});

describe('the next run sees the disk as it is now', () => {
  test('an approved migration edited during the apply is drift for the next preflight, not silently re-approved', async () => {
    await writeTree(tree);
    await applyMigrations(target().url, dir, 2);
    const { id } = await approvedRun();
    await applyChangingDisk(id, 'pause', CHANGES['js edited']!);
    assert.equal((await api('get', `/v1/runs/${id}`, 'vic')).body.status, 'succeeded');
    // Nothing pending is left, but the edited file no longer matches what ran (the ledger's checksum).
    await write('migrations/3000_more.sql', 'CREATE TABLE more (id int);\n');
    const next = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'next' });
    assert.equal(next.status, 201, next.text);
    await t.settle();
    const preflight = (await api('get', `/v1/runs/${next.body.id}/preflight`, 'vic')).body.report;
    assert.ok(preflight.findings.some((f: { rule: string; migration: string }) => f.rule === 'applied-migration-changed' && f.migration === '2000_add-note'), JSON.stringify(preflight.findings));
  });
});
