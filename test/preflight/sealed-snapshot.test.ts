import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { MigrationChangedError } from '../../services/migrations/loader.js';
import { snapshotDigest } from '../../services/migrations/seal.js';
import { materializeSnapshot } from '../../services/migrations/snapshot.js';
import { SnapshotError } from '../../services/migrations/snapshot-store.js';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { applyMigrations } from '../support/migrations.js';
import { COLUMNS_MJS, filesUnder, NOTE_JS, QUOTE_CJS, SCORE_SQL, writeTree } from '../support/sealed-tree.js';

// Issue 15, items 2 and 3: preflight seals the bytes of every migration and of
// every local module it imports; the digest covers them; the rehearsal runs
// from the seal, a changed helper is drift, an import outside the closure is a
// preflight error, and a helper edited without a restart never runs stale.
let t: TestApp;
let tree: string;
let dir: string;
let outside: string;
let dataDir: string;
let control: pg.Pool;

const as = (who: Subject) => ({ authorization: bearer(who) });
const api = (method: 'get' | 'post', path: string, who: Subject, body?: object) => {
  const req = t.http()[method](path).set(as(who));
  return body === undefined ? req : req.send(body);
};
const target = () => t.targets.staging;
const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');
const columns = async () => (await target().query(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'accounts' ORDER BY ordinal_position`)).rows.map((r) => r.column_name as string);

async function createRun(): Promise<{ id: string; status: string; digest: string }> {
  const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'sealed preflight' });
  assert.equal(created.status, 201, created.text);
  await t.settle();
  return (await api('get', `/v1/runs/${created.body.id}`, 'vic')).body;
}
const preflightOf = async (id: string) => (await api('get', `/v1/runs/${id}/preflight`, 'vic')).body.report;
const statementsOf = (report: { impact: { migrations: Array<{ migration: string; statements: Array<{ statement: string }> }> } }, name: string) =>
  report.impact.migrations.find((m) => m.migration === name)!.statements.map((s) => s.statement);

async function approveAndApply(id: string): Promise<{ status: string; error: unknown }> {
  const approved = await api('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
  assert.ok(['approved', 'scheduled'].includes(approved.body.status), approved.text);
  const res = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging', reason: 'test' });
  if (res.status !== 202) return { status: `apply answered ${res.status}`, error: res.body };
  await t.settle();
  return (await api('get', `/v1/runs/${id}`, 'vic')).body;
}

before(async () => {
  tree = await mkdtemp(join(tmpdir(), 'sf-sealpf-tree-'));
  dir = join(tree, 'migrations');
  outside = await mkdtemp(join(tmpdir(), 'sf-sealpf-outside-'));
  dataDir = await mkdtemp(join(tmpdir(), 'sf-sealpf-data-'));
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
      backup: { method: 'pg_dump', dir: ${JSON.stringify(join(dataDir, 'backups'))} }, workers: { pause: { method: 'sql' } },
      verify: { smokeEtl: false, watchMinutes: 0.005 } },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)} } } };`;
  t = await startTestApp({ label: 'sealpf', migrationConfigSource: config, env: { DATA_DIR: dataDir } });
  control = new pg.Pool({ connectionString: t.control.url, max: 2 });
});

after(async () => {
  await control.end();
  await t.close();
  for (const d of [tree, outside, dataDir]) await rm(d, { recursive: true, force: true });
});

afterEach(async () => {
  await t.settle();
  await t.control.query(`UPDATE runs SET status = 'cancelled' WHERE status NOT IN ('cancelled', 'succeeded', 'failed', 'rejected', 'rolled_back', 'restored', 'preflight_failed', 'verification_failed', 'degraded')`);
  await target().query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;');
});

describe('what preflight seals', () => {
  test('the exact bytes of the migrations and of the helpers they import, transitively; the digest covers them all', async () => {
    await writeTree(tree);
    await applyMigrations(target().url, dir, 2);
    const run = await createRun();
    assert.equal(run.status, 'awaiting_approval');
    const files = await t.control.query(
      `SELECT f.path, f.kind, f.position, f.sha256, b.content FROM run_snapshot_files f JOIN snapshot_blobs b USING (sha256) WHERE f.run_id = $1 AND f.digest = $2 ORDER BY f.path`,
      [run.id, run.digest],
    );
    assert.deepEqual(files.rows.map((r) => [r.path, r.kind, r.position]), [
      ['lib/columns.mjs', 'module', null], ['lib/quote.cjs', 'module', null],
      ['migrations/2000_add-note.js', 'migration', 0], ['migrations/2100_add-score.sql', 'migration', 1],
    ]);
    const onDisk: Record<string, string> = { 'lib/columns.mjs': COLUMNS_MJS, 'lib/quote.cjs': QUOTE_CJS, 'migrations/2000_add-note.js': NOTE_JS, 'migrations/2100_add-score.sql': SCORE_SQL };
    for (const row of files.rows) {
      assert.equal((row.content as Buffer).toString('utf8'), onDisk[row.path], `${row.path} is sealed byte for byte`);
      assert.equal(row.sha256, sha256(onDisk[row.path]!));
    }
    const expected = snapshotDigest('migrations',
      [{ file: '2000_add-note.js', sha256: sha256(NOTE_JS) }, { file: '2100_add-score.sql', sha256: sha256(SCORE_SQL) }],
      [{ path: 'lib/columns.mjs', sha256: sha256(COLUMNS_MJS) }, { path: 'lib/quote.cjs', sha256: sha256(QUOTE_CJS) }]);
    assert.equal(run.digest, expected, 'the run carries the digest over all four files');
    const report = await preflightOf(run.id);
    assert.equal(report.digest, run.digest);
    assert.match(report.checks.find((c: { id: string }) => c.id === 'sealed-snapshot').detail, /2 migration\(s\) and 2 imported module\(s\) sealed.*lib\/columns\.mjs, lib\/quote\.cjs/);
    assert.deepEqual(await filesUnder(join(dataDir, 'sealed-runs')), [], 'the rehearsal copy is removed');

    // The snapshot is evidence: the database refuses to change it.
    await assert.rejects(t.control.query(`UPDATE snapshot_blobs SET content = 'x' WHERE sha256 = $1`, [sha256(QUOTE_CJS)]), /sealed/);
    await assert.rejects(t.control.query('DELETE FROM run_snapshot_files WHERE run_id = $1', [run.id]), /sealed/);
    await assert.rejects(t.control.query('TRUNCATE run_snapshots CASCADE'), /sealed/);
  });

  test('a helper imported two levels down changed after approval is drift: the apply is refused and nothing runs', async () => {
    await writeTree(tree);
    await applyMigrations(target().url, dir, 2);
    const run = await createRun();
    await writeFile(join(tree, 'lib', 'quote.cjs'), `module.exports = { quote: (name) => '"' + name + '_evil"' };\n`);
    const approved = await api('post', `/v1/runs/${run.id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
    assert.ok(['approved', 'scheduled'].includes(approved.body.status), approved.text);
    const res = await api('post', `/v1/runs/${run.id}/apply`, 'olga', { confirm: 'staging', reason: 'test' });
    assert.equal(res.status, 409, res.text);
    assert.match(res.body.detail, /content of the pending migrations changed since approval/);
    await t.settle();
    assert.deepEqual(await columns(), ['id', 'email']);
  });
});

describe('imports that cannot be sealed', () => {
  test('a local file outside the closure, an absolute path, a file in node_modules or at the top of the migrations directory: preflight errors naming each', async () => {
    await writeTree(tree, false);
    await applyMigrations(target().url, dir, 2);
    const helper = join(outside, 'helper.mjs');
    await writeFile(helper, `export const column = 'note';\n`);
    await mkdir(join(tree, 'node_modules', 'pkg'), { recursive: true });
    await writeFile(join(tree, 'node_modules', 'pkg', 'index.js'), 'module.exports = {};\n');
    const rel = `../../${outside.split('/').pop()}/helper.mjs`;
    await writeFile(join(dir, '2000_outside.js'), `import { column } from '${rel}';\nexport const up = (pgm) => { pgm.sql('SELECT 1'); };\n`);
    await writeFile(join(dir, '2001_absolute.js'), `const h = require(${JSON.stringify(helper)});\nexport const up = (pgm) => { pgm.sql('SELECT 1'); };\n`);
    await writeFile(join(dir, '2002_node-modules.js'), `import x from '../node_modules/pkg/index.js';\nexport const up = (pgm) => { pgm.sql('SELECT 1'); };\n`);
    await writeFile(join(dir, '2003_sibling.js'), `import { up as other } from './2000_outside.js';\nexport const up = (pgm) => { pgm.sql('SELECT 1'); };\n`);
    const run = await createRun();
    assert.equal(run.status, 'preflight_failed');
    const report = await preflightOf(run.id);
    const errors = report.findings.filter((f: { rule: string; severity: string }) => f.rule === 'import-outside-snapshot' && f.severity === 'error');
    const by = (migration: string) => errors.find((f: { migration: string }) => f.migration === migration)?.message ?? '';
    assert.ok(by('2000_outside').includes(helper) && /outside the snapshot's closure root/.test(by('2000_outside')), by('2000_outside'));
    assert.ok(by('2001_absolute').includes(helper) && /absolute path/.test(by('2001_absolute')), by('2001_absolute'));
    assert.match(by('2002_node-modules'), /node_modules\/pkg\/index\.js inside a node_modules directory/);
    assert.match(by('2003_sibling'), /migrations\/2000_outside\.js at the top of the migrations directory/);
    assert.equal(report.checks.find((c: { id: string }) => c.id === 'sealed-snapshot').status, 'fail');
    assert.equal((await t.control.query('SELECT count(*)::int AS n FROM run_snapshots WHERE run_id = $1', [run.id])).rows[0].n, 0, 'nothing sealed');
    await rm(join(tree, 'node_modules'), { recursive: true, force: true });
  });
});

describe('the rehearsal and the apply run the seal, not the disk or a cached module', () => {
  test('a helper edited while the rehearsal copies the schema: the rehearsal runs the sealed helper, and the edit is drift at apply', async () => {
    await writeTree(tree);
    await applyMigrations(target().url, dir, 2);
    // pg_dump --schema-only waits for this lock: the seal is taken, the rehearsal has not run yet.
    const holder = new pg.Client({ connectionString: target().url, application_name: 'test-lock-holder' });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE');
    let id: string;
    try {
      const created = await api('post', '/v1/runs', 'alice', { environment: 'staging', description: 'edited mid-preflight' });
      assert.equal(created.status, 201, created.text);
      id = created.body.id;
      for (let i = 0; ; i++) {
        const waiting = (await target().query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pg_dump' AND wait_event_type = 'Lock'`)).rows[0].n;
        if (waiting) break;
        assert.ok(i < 800, 'pg_dump of the rehearsal never waited on the lock');
        await sleep(25);
      }
      await writeFile(join(tree, 'lib', 'columns.mjs'), `export const column = 'evil';\n`);
    } finally {
      await holder.query('COMMIT');
      await holder.end();
    }
    await t.settle();
    const run = (await api('get', `/v1/runs/${id}`, 'vic')).body;
    assert.equal(run.status, 'awaiting_approval', JSON.stringify(run.error));
    const report = await preflightOf(id);
    assert.deepEqual(statementsOf(report, '2000_add-note'), ['ALTER TABLE accounts ADD COLUMN "note" text'], 'the rehearsal ran the sealed helper');
    const sealed = await t.control.query(`SELECT b.content FROM run_snapshot_files f JOIN snapshot_blobs b USING (sha256) WHERE f.run_id = $1 AND f.path = 'lib/columns.mjs'`, [id]);
    assert.equal(sealed.rows[0].content.toString('utf8'), COLUMNS_MJS);
    const applied = await approveAndApply(id);
    assert.equal(applied.status, 'apply answered 409', 'the edited helper is not what was approved');
    assert.deepEqual(await columns(), ['id', 'email']);
  });

  test('a helper edited without a restart: the re-approved version runs, never the copy an earlier rehearsal loaded', async () => {
    await writeTree(tree);
    await applyMigrations(target().url, dir, 2);
    const run = await createRun();
    assert.deepEqual(statementsOf(await preflightOf(run.id), '2000_add-note'), ['ALTER TABLE accounts ADD COLUMN "note" text']);
    // Same path, new bytes, same process: Node's module cache still holds the old one.
    await writeFile(join(tree, 'lib', 'columns.mjs'), `import { quote } from './quote.cjs';\nexport const column = quote('remark');\n`);
    assert.equal((await api('post', `/v1/runs/${run.id}/preflight`, 'alice')).status, 202);
    await t.settle();
    const again = (await api('get', `/v1/runs/${run.id}`, 'vic')).body;
    assert.notEqual(again.digest, run.digest, 'the helper is part of the digest');
    assert.deepEqual(statementsOf(await preflightOf(run.id), '2000_add-note'), ['ALTER TABLE accounts ADD COLUMN "remark" text'], 'the rehearsal ran the new helper');
    const done = await approveAndApply(run.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.deepEqual(await columns(), ['id', 'email', 'remark', 'score'], 'the approved helper ran, not a cached one');
  });
});

describe('materializeSnapshot', () => {
  test('the run-private copy is verified before each use: a file added, changed or removed in it is refused; a wrong digest is refused', async () => {
    await writeTree(tree);
    await applyMigrations(target().url, dir, 2);
    const run = await createRun();
    await assert.rejects(materializeSnapshot(control, run.id, { digest: 'f'.repeat(64), dataDir }), (err) => err instanceof SnapshotError && err.code === 'snapshot-missing');

    const copy = await materializeSnapshot(control, run.id, { digest: run.digest, dataDir });
    assert.deepEqual(copy.sealed, ['2000_add-note', '2100_add-score']);
    assert.deepEqual((await filesUnder(copy.dir)).sort(), ['2000_add-note.js', '2100_add-score.sql'], 'node-pg-migrate sees exactly the sealed migrations');
    assert.equal(await readFile(join(copy.root, 'lib', 'columns.mjs'), 'utf8'), COLUMNS_MJS);
    await copy.verify();
    const refused = async (change: () => Promise<void>, undo: () => Promise<void>, what: RegExp) => {
      await change();
      await assert.rejects(copy.verify(), (err) => err instanceof MigrationChangedError && what.test(err.message));
      await undo();
      await copy.verify();
    };
    await refused(() => writeFile(join(copy.dir, '3000_evil.js'), 'x'), () => rm(join(copy.dir, '3000_evil.js')), /not sealed: migrations\/3000_evil\.js/);
    await refused(async () => { await rm(join(copy.root, 'lib', 'quote.cjs')); await writeFile(join(copy.root, 'lib', 'quote.cjs'), 'module.exports = {};'); },
      async () => { await rm(join(copy.root, 'lib', 'quote.cjs')); await writeFile(join(copy.root, 'lib', 'quote.cjs'), QUOTE_CJS); }, /changed: lib\/quote\.cjs/);
    await refused(() => rm(join(copy.dir, '2100_add-score.sql')), () => writeFile(join(copy.dir, '2100_add-score.sql'), SCORE_SQL), /missing: migrations\/2100_add-score\.sql/);

    // Copies a killed process left are swept; one another process is still writing is not (nor does it break the sweep).
    const exited = spawnSync(process.execPath, ['-e', '']).pid!;
    const base = join(dataDir, 'sealed-runs');
    await mkdir(join(base, 'dead-run-1'), { recursive: true });
    await writeFile(join(base, 'dead-run-1', 'owner.json'), JSON.stringify({ host: hostname(), pid: exited, token: 'x' }));
    await mkdir(join(base, 'being-written-1'), { recursive: true });
    await writeFile(join(base, 'being-written-1', 'owner.json'), '');
    const second = await materializeSnapshot(control, run.id, { digest: run.digest, dataDir });
    assert.equal(existsSync(join(base, 'dead-run-1')), false, 'the dead process\'s copy is removed');
    assert.equal(existsSync(join(base, 'being-written-1')), true);
    await rm(join(base, 'being-written-1'), { recursive: true });
    assert.notEqual(second.root, copy.root, 'every use gets a fresh path (no module cache can serve an old copy)');
    await copy.cleanup();
    await second.cleanup();
    await copy.cleanup();
    assert.deepEqual(await filesUnder(join(dataDir, 'sealed-runs')), []);
  });
});
