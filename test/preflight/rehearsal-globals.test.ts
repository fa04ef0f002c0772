// What a rehearsal creates server-wide outlives a killed process only as a
// record in the control database (issue 16, isolation): a child process
// drives the guard and its ledger as a rehearsal does (test/support/
// globals-crash-child.ts) and is SIGKILLed; the sweep is then checked against
// what it must drop and what it must leave. The kill -9 of a whole service
// process mid-migration is test/resilience/rehearsal-globals-kill.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { PROJECT_ROOT } from '../../database/paths.js';
import { exec } from '../../database/db.js';
import { PREFLIGHT_LOCK_CLASS } from '../../database/sql/locks.js';
import { insertRehearsalGlobals } from '../../database/sql/rehearsal-globals.js';
import { insertRunSnapshot, insertSnapshotBlobs, insertSnapshotFiles } from '../../database/sql/snapshots.js';
import { ownerTag, runCopyPrefix } from '../../services/preflight/ephemeral.js';
import { LINT_DB_PREFIX, REHEARSAL_DB_PREFIX } from '../../database/sql/preflight.js';
import { ClusterGuard } from '../../services/preflight/rehearsal/cluster-guard.js';
import { createdInSources } from '../../services/preflight/rehearsal/globals-candidates.js';
import { globalsLedger } from '../../services/preflight/rehearsal/globals-ledger.js';
import { sweepOrphanedGlobals, sweepRunAttempts, type SweepContext } from '../../services/preflight/rehearsal/globals-sweep.js';
import { serverKeyOf } from '../../services/preflight/rehearsal/server-identity.js';
import type { RehearsalInput } from '../../services/preflight/rehearsal/types.js';
import { waitFor } from '../scheduler/server-process.js';
import { dirMigrationConfig, bearer, startTestApp, type TestApp } from '../support/app.js';
import { adminQuery, adminUrl } from '../support/db.js';
import type { CrashOp, CrashSpec } from '../support/globals-crash-child.js';
import { migrationSource as migration, writeMigrations as writeFiles } from '../support/migrations.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
let t: TestApp;
let dir: string;
const pools: pg.Pool[] = [];
const children: Array<{ kill(): void }> = [];
// Roles are server-wide: every one a test makes is dropped afterwards, whatever happened.
const roles: string[] = [];
const newRole = (tag: string) => {
  const role = `sf_h16g_${tag}_${randomBytes(4).toString('hex')}`;
  roles.push(role);
  return role;
};
const roleExists = async (role: string) => (await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
const pool = () => {
  const p = new pg.Pool({ connectionString: t.config.databaseUrl!, max: 3 });
  pools.push(p);
  return p;
};
const sweepCtx = (control: pg.Pool): SweepContext => ({ control, serverUrl: t.config.databaseUrl!, owner: ownerTag(t.config.databaseUrl!), log: quiet });
const recorded = async (runId: string) =>
  ((await t.control.query('SELECT kind, name, origin FROM rehearsal_globals WHERE run_id = $1', [runId])).rows as Array<{ kind: string; name: string; origin: string }>)
    .sort((x, y) => x.name.localeCompare(y.name));
const sweptEvents = async (runId: string) =>
  (await t.control.query(`SELECT details FROM run_events WHERE run_id = $1 AND type = 'rehearsal.globals_swept' ORDER BY id`, [runId])).rows.map((r) => r.details);

async function insertRun(environment: string): Promise<string> {
  const { rows } = await t.control.query(`INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals)
    VALUES ($1, 'preflight_running', 'globals', 'alice', 'd', '{any}') RETURNING id`, [environment]);
  return rows[0].id as string;
}

/** A sealed snapshot of these files for the run, as sealing stores it. */
async function seal(runId: string, files: Record<string, string>): Promise<string> {
  const digest = randomBytes(32).toString('hex');
  const entries = Object.entries(files).map(([path, text]) => ({ path, content: Buffer.from(text), sha256: createHash('sha256').update(text).digest('hex') }));
  const client = new pg.Client({ connectionString: t.config.databaseUrl! });
  await client.connect();
  try {
    await exec(client, insertSnapshotBlobs(entries.map((e) => e.sha256), entries.map((e) => e.content)));
    await exec(client, insertRunSnapshot(runId, digest, dir, 'migrations'));
    await exec(client, insertSnapshotFiles(runId, digest, { paths: entries.map((e) => e.path), kinds: entries.map(() => 'migration'), positions: entries.map((_, i) => i), sha256s: entries.map((e) => e.sha256) }));
  } finally {
    await client.end();
  }
  return digest;
}

/**
 * A rehearsal of `runId` in a child process, alive (holding the run's
 * preflight lock) once this resolves, with what `ops` made on the server;
 * kill() SIGKILLs it and waits until its lock is gone with it.
 */
async function rehearsalThatDies(runId: string, digest: string, ops: CrashOp[]): Promise<{ kill(): Promise<void> }> {
  const spec: CrashSpec = { controlUrl: t.config.databaseUrl!, serverUrl: t.config.databaseUrl!, owner: ownerTag(t.config.databaseUrl!), runId, digest, ops };
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/test/support/globals-crash-child.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += String(d); });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => { if (String(d).includes('READY')) resolve(); });
    void exited.then(() => reject(new Error(`the rehearsal child exited early: ${stderr}`)));
  });
  return {
    async kill() {
      child.kill('SIGKILL');
      await exited;
      await waitFor('the dead rehearsal\'s lock to go', async () => {
        const { rows } = await t.control.query('SELECT pg_try_advisory_lock($1, hashtext($2)) AS free', [PREFLIGHT_LOCK_CLASS, runId]);
        return rows[0].free ? true : undefined; // taken on a connection of its own, which ends here
      }, 10_000, 50);
    },
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sf-h16-globals-'));
  const config = dirMigrationConfig(dir);
  t = await startTestApp({ label: 'h16_globals', migrationConfigSource: config });
});

after(async () => {
  for (const child of children) child.kill();
  await Promise.all(pools.map((p) => p.end()));
  await t?.close();
  for (const role of roles) await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  const active = await t.control.query(`SELECT id FROM runs WHERE status IN ('awaiting_approval', 'approved', 'created') AND environment IN ('staging', 'production')`);
  for (const { id } of active.rows) await t.http().post(`/v1/runs/${id}/cancel`).set('authorization', bearer('olga')).send({});
});

describe('a dead rehearsal\'s server-wide objects', () => {
  test('the sweep drops what the sealed files create and what a step was seen creating, nothing that was there before, nothing another session made; not while the run is alive; once when two sweep at once', async () => {
    const runId = await insertRun('globals-dead');
    const [before, fromFiles, fromStep, cleaned, other] = ['pre', 'files', 'step', 'cleaned', 'other'].map(newRole) as [string, string, string, string, string];
    // There before the rehearsal, and created "if not exists" by the run's migration: never the rehearsal's.
    await adminQuery(`CREATE ROLE ${before} NOLOGIN`);
    const control = pool();
    const digest = await seal(runId, {
      'migrations/1000_roles.js': migration(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${before}') THEN CREATE ROLE ${before}; END IF; END $$; CREATE ROLE ${fromFiles} NOLOGIN`),
    });
    const dead = await rehearsalThatDies(runId, digest, [
      // (a) a role its files create, committed, never looked at by the guard:
      { sql: `CREATE ROLE ${fromFiles} NOLOGIN` },
      // (b) one whose name the files compute, seen after its step, holding a privilege (DROP ROLE alone refuses it):
      { sql: `CREATE ROLE ${fromStep} NOLOGIN` },
      { sql: `GRANT CONNECT ON DATABASE ${t.control.name} TO ${fromStep}` },
      { seen: '2000_computed', statements: [`CREATE ROLE ${fromStep} NOLOGIN`] },
      // (c) one its cleanup had already dropped when the process died:
      { sql: `CREATE ROLE ${cleaned} NOLOGIN` },
      { seen: '3000_cleaned', statements: [`CREATE ROLE ${cleaned}`] },
      { sql: `DROP ROLE ${cleaned}` },
      // Another session's, during the rehearsal, named by nothing of the run:
      { sql: `CREATE ROLE ${other} NOLOGIN` },
    ]);
    assert.deepEqual(await recorded(runId), [
      { kind: 'role', name: cleaned, origin: 'step' },
      { kind: 'role', name: fromFiles, origin: 'source' },
      { kind: 'role', name: fromStep, origin: 'step' },
    ].sort((x, y) => x.name.localeCompare(y.name)), 'what the files create and the server lacked, written before any migration ran; what steps were seen creating');

    // While the rehearsal lives (its run's preflight lock held), nothing is touched.
    assert.deepEqual((await sweepOrphanedGlobals(sweepCtx(control))).filter((s) => s.runId === runId), []);
    assert.equal(await roleExists(fromFiles), true);
    assert.equal(await roleExists(fromStep), true);
    await dead.kill();

    // Two replicas sweeping at once: one does it, the other finds nothing; neither fails.
    const swept = (await Promise.all([sweepOrphanedGlobals(sweepCtx(control)), sweepOrphanedGlobals(sweepCtx(pool()))])).flat().filter((s) => s.runId === runId);
    assert.equal(swept.length, 1);
    assert.deepEqual(swept[0]!.dropped.map((o) => [o.name, o.origin, o.cleanup]).sort(), [
      [fromFiles, 'source', 'dropped'],
      [fromStep, 'step', 'dropped (after DROP OWNED)'],
    ].sort());
    assert.deepEqual(swept[0]!.left, []);
    assert.equal(await roleExists(fromFiles), false);
    assert.equal(await roleExists(fromStep), false);
    assert.equal(await roleExists(before), true, 'a role that was there before the rehearsal stays');
    assert.equal(await roleExists(other), true, "another session's role stays");
    assert.deepEqual(await recorded(runId), []);
    const events = await sweptEvents(runId);
    assert.equal(events.length, 1, 'one audit event, from the sweep that won');
    assert.deepEqual(events[0].dropped.map((o: { kind: string; name: string }) => `${o.kind} ${o.name}`).sort(), [`role ${fromFiles}`, `role ${fromStep}`].sort());
    assert.deepEqual(await sweepOrphanedGlobals(sweepCtx(control)), [], 'a later sweep finds nothing');
  });

  test('a role only the files name is dropped plainly: one that holds privileges is somebody\'s and stays, and the event says so', async () => {
    const runId = await insertRun('globals-plain');
    const used = newRole('used');
    const control = pool();
    const digest = await seal(runId, { 'migrations/1000_role.sql': `-- Up Migration\nCREATE ROLE ${used} NOLOGIN;\n-- Down Migration\nDROP ROLE ${used};\n` });
    await (await rehearsalThatDies(runId, digest, [])).kill();
    // Made after the process died, and granted something: not the rehearsal's own fresh role.
    await adminQuery(`CREATE ROLE ${used} NOLOGIN`);
    await adminQuery(`GRANT CONNECT ON DATABASE ${t.control.name} TO ${used}`);
    const [swept] = (await sweepOrphanedGlobals(sweepCtx(control))).filter((s) => s.runId === runId);
    assert.deepEqual(swept!.dropped, []);
    assert.deepEqual(swept!.left.map((o) => o.name), [used]);
    assert.match(swept!.left[0]!.cleanup, /left on the server: .*depend/);
    assert.equal(await roleExists(used), true);
    assert.equal((await sweptEvents(runId))[0].left[0].name, used);
  });

  test('what was recorded on another server is left alone there and here', async () => {
    const runId = await insertRun('globals-elsewhere');
    const role = newRole('elsewhere');
    await adminQuery(`CREATE ROLE ${role} NOLOGIN`);
    const control = pool();
    await exec(control, insertRehearsalGlobals(randomUUID(), runId, 'system 0', [{ kind: 'role', name: role, origin: 'step', migration: '1000_x' }]));
    assert.deepEqual((await sweepOrphanedGlobals(sweepCtx(control))).filter((s) => s.runId === runId), []);
    assert.equal(await roleExists(role), true);
    assert.equal((await recorded(runId)).length, 1);
    await t.control.query('DELETE FROM rehearsal_globals WHERE run_id = $1', [runId]);
  });
});

describe('a live rehearsal', () => {
  test('closed without its cleanup (a copy that could not be dropped), it sweeps its own record at once instead of leaving names behind', async () => {
    const runId = await insertRun('globals-abandoned');
    const [seen, named] = ['seen', 'named'].map(newRole) as [string, string];
    const control = pool();
    const digest = await seal(runId, { 'migrations/1000_role.sql': `-- Up Migration\nCREATE ROLE ${named};\n` });
    const input = { runId, serverUrl: t.config.databaseUrl!, targetUrl: t.targets.staging.url, owner: ownerTag(t.config.databaseUrl!), ledger: { control, digest, log: quiet } } as unknown as RehearsalInput;
    const guard = await ClusterGuard.open(input.serverUrl, { ignoreDatabasePrefixes: [REHEARSAL_DB_PREFIX, LINT_DB_PREFIX], ledger: globalsLedger(input) });
    await adminQuery(`CREATE ROLE ${seen} NOLOGIN`);
    await guard.afterStep({ migration: '1000_role', phase: 'up', statements: [`CREATE ROLE ${seen}`] });
    assert.equal((await recorded(runId)).length, 2);
    await guard.close();
    assert.equal(await roleExists(seen), false);
    assert.deepEqual(await recorded(runId), [], 'no name is left for a later sweep to take for the rehearsal\'s');
    assert.deepEqual((await sweptEvents(runId)).map((e) => e.dropped.map((o: { name: string }) => o.name)), [[seen]]);
  });
});

describe('through the preflight', () => {
  test('a finished rehearsal leaves no record; a re-run first sweeps a dead earlier attempt of the run and its report says so', async () => {
    const role = newRole('api');
    const leaked = newRole('leaked');
    await writeFiles(dir, { '1000_reporting-role': migration(`CREATE ROLE ${role} NOLOGIN`, `DROP ROLE IF EXISTS ${role}`) });
    const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'globals' });
    assert.equal(res.status, 201, res.text);
    await t.settle();
    const run = (await t.http().get(`/v1/runs/${res.body.id}`).set('authorization', bearer('vic'))).body;
    assert.equal(run.status, 'awaiting_approval');
    assert.equal(await roleExists(role), false);
    assert.deepEqual(await recorded(run.id), [], 'dropped by the cleanup, the record deleted after it');

    // An earlier attempt of this run that died after a step created a role (as a killed process leaves it).
    const dead = await rehearsalThatDies(run.id, run.digest, [
      { sql: `CREATE ROLE ${leaked} NOLOGIN` },
      { seen: '1000_reporting-role', statements: [`CREATE ROLE ${leaked}`] },
    ]);
    await dead.kill();

    const rerun = await t.http().post(`/v1/runs/${run.id}/preflight`).set('authorization', bearer('alice')).send();
    assert.equal(rerun.status, 202, rerun.text);
    await t.settle();
    assert.equal(await roleExists(leaked), false, 'swept before the new baseline');
    assert.equal((await t.http().get(`/v1/runs/${run.id}`).set('authorization', bearer('vic'))).body.status, 'awaiting_approval');
    const events = await sweptEvents(run.id);
    assert.deepEqual(events.map((e) => e.dropped.map((o: { name: string }) => o.name)), [[leaked]]);
    const report = (await t.http().get(`/v1/runs/${run.id}/preflight`).set('authorization', bearer('vic'))).body.report;
    const note = report.notes.find((n: string) => n.startsWith('An earlier attempt of this preflight was cut short'));
    assert.ok(note, JSON.stringify(report.notes));
    assert.match(note, new RegExp(`dropped afterwards: role ${leaked} \\(1000_reporting-role\\)`));
    assert.deepEqual(await recorded(run.id), []);
  });
});

describe('a live attempt\'s own copy', () => {
  test('created before its guard sweeps the run\'s dead attempts, it is not taken for theirs; theirs goes', async () => {
    await writeFiles(dir, { '1000_plain': migration('CREATE TABLE plain_t (id int)', 'DROP TABLE plain_t') });
    const res = await t.http().post('/v1/runs').set('authorization', bearer('alice')).send({ environment: 'staging', description: 'own copy' });
    assert.equal(res.status, 201, res.text);
    await t.settle();
    const runId = res.body.id as string;
    const owner = ownerTag(t.config.databaseUrl!);
    const prefix = runCopyPrefix(owner, runId);
    const server = new pg.Client({ connectionString: adminUrl() });
    await server.connect();
    const pool = new pg.Pool({ connectionString: t.control.url, max: 2 });
    pools.push(pool);
    try {
      // A dead attempt of the run, with a record and a copy left behind; and the live attempt's copy, already created.
      await exec(pool, insertRehearsalGlobals(randomUUID(), runId, await serverKeyOf(server), [{ kind: 'role', name: newRole('gone'), origin: 'source', migration: null }]));
      await adminQuery(`CREATE DATABASE "${prefix}dead"`);
      await adminQuery(`CREATE DATABASE "${prefix}live"`);
      const ctx: SweepContext = { control: pool, serverUrl: adminUrl(), owner, log: quiet as unknown as SweepContext['log'], keepCopy: `${prefix}live` };
      const swept = await sweepRunAttempts(ctx, server, runId, randomUUID(), 'earlier');
      assert.deepEqual(swept.map((a) => a.copies), [[`${prefix}dead`]]);
      const left = (await adminQuery('SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1', [prefix])).rows.map((r) => r.datname);
      assert.deepEqual(left, [`${prefix}live`], 'the live attempt keeps its copy');
    } finally {
      await adminQuery(`DROP DATABASE IF EXISTS "${prefix}live"`);
      await adminQuery(`DROP DATABASE IF EXISTS "${prefix}dead"`);
      await server.end();
    }
  });
});

describe('what sealed files create server-wide', () => {
  test('CREATE ROLE/USER/GROUP/DATABASE/TABLESPACE/SUBSCRIPTION and pgm.createRole, as PostgreSQL folds the names; mentions and computed names are not', () => {
    const found = createdInSources([
      { file: 'a.sql', text: 'CREATE ROLE Reader NOLOGIN; create user "MixedCase" PASSWORD \'x\'; CREATE GROUP ops; CREATE USER MAPPING FOR reader SERVER s;' },
      { file: 'b.js', text: 'pgm.sql("CREATE DATABASE \\"Reports\\" TEMPLATE template0"); pgm.createRole(\'Auditor\'); pgm.sql(`CREATE ROLE ${name}`); pgm.createRole(`x_${env}`);' },
      { file: 'c.sql', text: 'CREATE TABLESPACE fast LOCATION \'/x\'; CREATE SUBSCRIPTION sub1 CONNECTION \'\' PUBLICATION p; CREATE TABLE analytics (id int); GRANT SELECT ON t TO somebody;' },
    ]);
    assert.deepEqual(found.map((c) => [c.kind, c.name, c.file]), [
      ['role', 'reader', 'a.sql'],
      ['role', 'MixedCase', 'a.sql'],
      ['role', 'ops', 'a.sql'],
      ['database', 'Reports', 'b.js'],
      ['role', 'Auditor', 'b.js'],
      ['tablespace', 'fast', 'c.sql'],
      ['subscription', 'sub1', 'c.sql'],
    ]);
  });
});
