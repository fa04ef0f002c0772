// kill -9 of the service in each phase of an apply, a down and a restore,
// once each (the ten-times loop is phase-kill.slow.test.ts): real service
// processes (`node dist/src/server.js`), a real pg_dump / pg_restore blocked
// on a lock the test holds, a real worker pause command, slow migrations.
// After each kill the child processes are gone (pdeathsig, or the
// reconciler's group kill), the next process reconciles the run to a status
// from which the environment takes a new run, and nothing is applied twice.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { serverSetup, startServer, testEnvironment, waitFor, type ServerProcess } from '../scheduler/server-process.js';
import {
  addPending, alive, appliedOnTarget, call, createApproved, eventTypes, groupAlive, leftovers, PENDING_NAMES, prepareTarget,
  recordedProcess, rollBack, runStatus, setSlow, clearSlow, waitGone, waitSession, waitStatus, writeFixtureMigrations,
} from './recovery-fixture.js';

const ENVS = ['backup', 'pausecmd', 'migrate', 'down', 'restore', 'cleanup'] as const;
type Env = (typeof ENVS)[number];

let control: TestDatabase;
const targets = {} as Record<Env, TestDatabase>;
let dir: string;
let env: Record<string, string>;
const servers: ServerProcess[] = [];
const holders: pg.Client[] = [];

async function server(name: string): Promise<ServerProcess> {
  const s = await startServer(name, env);
  servers.push(s);
  return s;
}

async function kill(s: ServerProcess): Promise<void> {
  s.child.kill('SIGKILL');
  assert.equal(await s.exited, 'SIGKILL');
}

/** A session of the test holding `lock` on the target until released. */
async function hold(target: TestDatabase, sql: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: target.url, application_name: 'test-lock-holder' });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('BEGIN');
  await client.query(sql);
  holders.push(client);
  return client;
}

const release = (client: pg.Client) => client.end().catch(() => undefined);

before(async () => {
  control = await createTestDatabase('phasecrash_ctl');
  dir = await mkdtemp(join(tmpdir(), 'sf-phasecrash-'));
  const migrations = await writeFixtureMigrations(dir);
  for (const e of ENVS) {
    targets[e] = await createTestDatabase(`phasecrash_${e}`);
    await prepareTarget(targets[e], migrations);
  }
  await addPending(migrations);
  const sql = { workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 } };
  const environments: Record<string, object> = Object.fromEntries(ENVS.map((e) => [e, testEnvironment(e, migrations, dir, { ...sql, backup: { method: 'pg_dump', dir: join(dir, 'backups', e), lockWaitTimeoutMs: 120_000 } })]));
  // The pause command leaves a child of its shell behind: only the reconciler's group kill can stop it.
  environments.pausecmd = testEnvironment('pausecmd', migrations, dir, { workers: { pause: { method: 'command', pause: 'sleep 120; echo done', resume: 'true' }, pauseTimeoutMs: 300_000 } });
  // The restore's cleanup drops the table the run created; a long lock_timeout lets the test hold it there.
  environments.cleanup = testEnvironment('cleanup', migrations, dir, { ...sql, lockTimeoutMs: 120_000, backup: { method: 'pg_dump', dir: join(dir, 'backups', 'cleanup') } });
  env = { ...(await serverSetup(dir, control.url, environments, Object.fromEntries(ENVS.map((e) => [e, targets[e].url])))), BACKFILLS: 'off' };
});

after(async () => {
  await Promise.all(holders.map(release));
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, ...Object.values(targets)].map((db) => db?.drop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function assertNoLeftovers(target: TestDatabase): Promise<void> {
  assert.deepEqual(await leftovers(control, target), { sessions: 0, targetLocks: 0, applyLocks: 0, openProcesses: 0 }, 'no run session, advisory lock or open child process is left');
}

/** A new run can be created on the environment (then cancelled again). */
async function assertEnvironmentFree(s: ServerProcess, environment: string): Promise<void> {
  const next = await call(s, 'POST', '/v1/runs', 'alice', { environment, description: 'after the crash' });
  assert.equal(next.status, 201, `a new run on ${environment}: ${JSON.stringify(next.body)}`);
  await waitStatus(control, next.body.id, ['awaiting_approval']);
  assert.equal((await call(s, 'POST', `/v1/runs/${next.body.id}/cancel`, 'olga', { reason: 'test cleanup' })).status, 200);
}

test('kill -9 while pg_dump runs: pg_dump dies with the service; the run is interrupted with no backup and closes without a restore', { timeout: 120_000 }, async () => {
  const target = targets.backup;
  const a = await server('backup-a');
  // pg_dump waits for this lock (lockWaitTimeoutMs 120 s): the kill lands while it runs.
  let blocker: pg.Client | undefined;
  const id = await createApproved(a, control, 'backup', async () => { blocker = await hold(target, 'LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE'); });
  const dump = await recordedProcess(control, id, 'backup');
  await waitSession(target, id, 'backup');
  assert.ok(alive(dump.pid), 'pg_dump runs');
  const files = await readdir(join(dir, 'backups', 'backup'));
  assert.equal(files.length, 1, 'the dump file being written');
  await kill(a);
  await waitGone(dump.pid, 'pg_dump, killed with its parent');

  const b = await server('backup-b');
  await waitStatus(control, id, ['interrupted'], 20_000);
  const report = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
  const r = report.reconciliation;
  assert.equal(r.phase, 'backup');
  assert.equal(r.closable, true);
  assert.deepEqual(r.landed, []);
  assert.equal(r.landedKnown, true);
  assert.match(r.advice.join(' '), /close the run/);
  assert.doesNotMatch(r.advice.join(' '), /restore the backup/);
  assert.equal(r.partialBackupRemoved, join(dir, 'backups', 'backup', files[0]!));
  assert.equal(existsSync(join(dir, 'backups', 'backup', files[0]!)), false, 'the half-written dump is gone');
  assert.equal((await call(b, 'GET', `/v1/runs/${id}`, 'vic')).body.backup, null);

  // The environment is held until the run is closed; down and restore have nothing to work with.
  assert.equal((await call(b, 'POST', '/v1/runs', 'alice', { environment: 'backup', description: 'blocked' })).status, 409);
  const down = await call(b, 'POST', `/v1/runs/${id}/rollback`, 'olga', { mode: 'down', confirm: 'backup', reason: 'x' });
  assert.equal(down.status, 409);
  assert.match(down.body.detail, /close it instead/);
  const restore = await call(b, 'POST', `/v1/runs/${id}/rollback`, 'olga', { mode: 'restore', confirm: 'backup', reason: 'x' });
  assert.equal(restore.status, 409);
  assert.match(restore.body.detail, /close it instead/);

  assert.equal((await call(b, 'POST', `/v1/runs/${id}/close`, 'alice', { reason: 'x' })).status, 403, 'closing needs an operator');
  assert.equal((await call(b, 'POST', `/v1/runs/${id}/close`, 'olga', {})).status, 400, 'a reason is required');
  assert.equal((await target.query('SELECT paused FROM etl_control')).rows[0].paused, true, 'the ETL is still paused by the dead apply');
  const closed = await call(b, 'POST', `/v1/runs/${id}/close`, 'olga', { reason: 'pg_dump was killed, nothing applied' });
  assert.equal(closed.status, 200, JSON.stringify(closed.body));
  assert.equal(closed.body.status, 'failed');
  assert.equal(closed.body.error.code, 'closed');
  assert.equal((await target.query('SELECT paused FROM etl_control')).rows[0].paused, false, 'closing lifted the run\'s pause');
  const events = await eventTypes(control, id);
  assert.deepEqual(events.slice(-2), ['run.interrupted', 'run.closed']);
  const again = await call(b, 'POST', `/v1/runs/${id}/close`, 'olga', { reason: 'twice' });
  assert.equal(again.status, 409);

  await release(blocker!);
  assert.deepEqual(await appliedOnTarget(target), [['1000_etl-control', 1], ['1100_create-accounts', 1]]);
  await assertNoLeftovers(target);
  await assertEnvironmentFree(b, 'backup');
  await b.stop();
});

test('kill -9 during a worker pause command: the reconciler kills what the command started; the run closes', { timeout: 120_000 }, async () => {
  const target = targets.pausecmd;
  const a = await server('pausecmd-a');
  const id = await createApproved(a, control, 'pausecmd');
  const pause = await recordedProcess(control, id, 'pause');
  await waitFor('sleep under the pause command', async () => (groupAlive(pause.pgid).length >= 2 ? true : undefined), 10_000, 50);
  await kill(a);
  // The shell died with the service (pdeathsig); the sleep it started lives on, in the recorded group.
  await waitGone(pause.pid, 'the pause command\'s shell');
  assert.ok(groupAlive(pause.pgid).length >= 1, 'the command\'s child outlived the service');

  const b = await server('pausecmd-b');
  await waitStatus(control, id, ['interrupted'], 20_000);
  assert.deepEqual(groupAlive(pause.pgid), [], 'the reconciler killed the command\'s process group');
  const r = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.apply.report.reconciliation;
  assert.equal(r.phase, 'pause');
  assert.deepEqual(r.orphanedProcesses.map((p: { result: string; pgid: number }) => [p.result, p.pgid]), [['killed', pause.pgid]]);
  assert.equal(r.closable, true);
  const closed = await call(b, 'POST', `/v1/runs/${id}/close`, 'olga', { reason: 'killed during the pause' });
  assert.equal(closed.status, 200, JSON.stringify(closed.body));
  assert.equal(closed.body.status, 'failed');
  await assertNoLeftovers(target);
  await b.stop();
});

test('kill -9 mid-migrate: close is refused naming what landed; re-apply runs only the rest; nothing applied twice', { timeout: 120_000 }, async () => {
  const target = targets.migrate;
  await setSlow(target, '3000-up', 60_000);
  const a = await server('migrate-a');
  const id = await createApproved(a, control, 'migrate');
  await waitSession(target, id, 'migrate', '%3000-up%');
  await kill(a);

  const b = await server('migrate-b');
  await waitStatus(control, id, ['interrupted'], 20_000);
  const r = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.apply.report.reconciliation;
  assert.equal(r.phase, 'migrate');
  assert.deepEqual(r.landed, ['2000_add-note']);
  assert.deepEqual(r.notLanded, ['3000_create-notes']);
  assert.equal(r.closable, false);
  assert.match(r.advice.join(' '), /Re-apply the rest/);
  assert.doesNotMatch(r.advice.join(' '), /None of the run's migrations landed/);
  assert.equal(r.orphanedSessions.length, 1, 'the migration still sleeping on the target was terminated');

  const refused = await call(b, 'POST', `/v1/runs/${id}/close`, 'olga', { reason: 'try' });
  assert.equal(refused.status, 409);
  assert.match(refused.body.detail, /2000_add-note/);
  assert.deepEqual(refused.body.landed, { target: ['2000_add-note'], ledger: ['2000_add-note'] });
  assert.equal(await runStatus(control, id), 'interrupted', 'a refused close changes nothing');

  await clearSlow(target);
  assert.equal((await call(b, 'POST', `/v1/runs/${id}/reapply`, 'olga', { confirm: 'prod', reason: 'x' })).status, 422);
  assert.equal((await call(b, 'POST', `/v1/runs/${id}/reapply`, 'alice', { confirm: 'migrate', reason: 'x' })).status, 403);
  const reapplied = await call(b, 'POST', `/v1/runs/${id}/reapply`, 'olga', { confirm: 'migrate', reason: 'the host was restarted' });
  assert.equal(reapplied.status, 202, JSON.stringify(reapplied.body));
  await waitStatus(control, id, ['succeeded'], 60_000);
  assert.deepEqual(await appliedOnTarget(target), [['1000_etl-control', 1], ['1100_create-accounts', 1], ['2000_add-note', 1], ['3000_create-notes', 1]]);
  const report = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
  assert.deepEqual(report.landedBefore, ['2000_add-note']);
  assert.deepEqual(report.migrations.map((m: { name: string }) => m.name), ['3000_create-notes']);
  const events = await eventTypes(control, id);
  assert.equal(events.filter((e) => e === 'apply.started').length, 1);
  assert.equal(events.filter((e) => e === 'apply.reapplied').length, 1);
  const ledger = await control.query('SELECT name FROM migration_ledger WHERE run_id = $1 ORDER BY name', [id]);
  assert.deepEqual(ledger.rows.map((x) => x.name), PENDING_NAMES);
  assert.equal((await target.query('SELECT paused FROM etl_control')).rows[0].paused, false, 'the re-apply took over the dead attempt\'s pause and lifted it');
  await assertNoLeftovers(target);
  await b.stop();
});

test('kill -9 during a down: reconciled to failed naming what is still applied; a second down finishes the job', { timeout: 150_000 }, async () => {
  const target = targets.down;
  const a = await server('down-a');
  const id = await createApproved(a, control, 'down');
  await waitStatus(control, id, ['succeeded'], 60_000);
  await setSlow(target, '3000-down', 60_000);
  await rollBack(a, id, 'down', 'down');
  await waitSession(target, id, 'down', '%3000-down%');
  assert.equal(await runStatus(control, id), 'rolling_back');
  await kill(a);

  const b = await server('down-b');
  await waitStatus(control, id, ['failed'], 20_000);
  const rb = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.rollback;
  assert.equal(rb.failure.code, 'rollback-interrupted');
  assert.deepEqual(rb.reconciliation.stillApplied, PENDING_NAMES);
  assert.equal(rb.reconciliation.phase, 'down');
  assert.equal(rb.reconciliation.orphans.sessions.length, 1);
  const requests = (await call(b, 'GET', `/v1/runs/${id}/rollback`, 'vic')).body;
  assert.equal(requests[0].status, 'failed', 'the request is closed too');

  await clearSlow(target);
  await rollBack(b, id, 'down', 'down');
  await waitStatus(control, id, ['rolled_back'], 60_000);
  assert.deepEqual(await appliedOnTarget(target), [['1000_etl-control', 1], ['1100_create-accounts', 1]]);
  assert.equal((await target.query(`SELECT to_regclass('public.notes') AS t`)).rows[0].t, null);
  assert.equal((await target.query('SELECT paused FROM etl_control')).rows[0].paused, false);
  await assertNoLeftovers(target);
  await assertEnvironmentFree(b, 'down');
  await b.stop();
});

test('kill -9 while pg_restore runs: pg_restore dies, the target is unchanged, the run fails; the restore asked again leaves the ETL running', { timeout: 150_000 }, async () => {
  const target = targets.restore;
  const a = await server('restore-a');
  const id = await createApproved(a, control, 'restore');
  await waitStatus(control, id, ['succeeded'], 60_000);
  await target.query('INSERT INTO notes VALUES (1)');
  // pg_restore --clean must drop accounts: it waits for this reader.
  const reader = await hold(target, 'SELECT count(*) FROM accounts');
  await rollBack(a, id, 'restore', 'restore');
  const restore = await recordedProcess(control, id, 'restore');
  await waitSession(target, id, 'restore');
  await kill(a);
  await waitGone(restore.pid, 'pg_restore, killed with its parent');

  const b = await server('restore-b');
  await waitStatus(control, id, ['failed'], 20_000);
  const rb = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.rollback;
  assert.equal(rb.failure.code, 'restore-interrupted');
  assert.equal(rb.reconciliation.restoreCommitted, false);
  assert.deepEqual(await appliedOnTarget(target), [['1000_etl-control', 1], ['1100_create-accounts', 1], ['2000_add-note', 1], ['3000_create-notes', 1]], 'the target is as before the restore');
  assert.equal((await target.query('SELECT count(*)::int AS n FROM notes')).rows[0].n, 1);
  await release(reader);

  await rollBack(b, id, 'restore', 'restore');
  await waitStatus(control, id, ['restored'], 60_000);
  assert.deepEqual(await appliedOnTarget(target), [['1000_etl-control', 1], ['1100_create-accounts', 1]]);
  const done = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.rollback;
  assert.deepEqual(done.dropped, ['public.notes']);
  assert.match(done.etl.action, /the apply's pause/);
  const etl = (await target.query('SELECT paused, changed_by FROM etl_control')).rows[0];
  assert.equal(etl.paused, false, 'the ETL runs after the restore, as before the apply');
  await assertNoLeftovers(target);
  await assertEnvironmentFree(b, 'restore');
  await b.stop();
});

test('kill -9 after pg_restore committed: the reconciler finishes the restore (new table dropped, ETL running) and records it', { timeout: 150_000 }, async () => {
  const target = targets.cleanup;
  const a = await server('cleanup-a');
  const id = await createApproved(a, control, 'cleanup');
  await waitStatus(control, id, ['succeeded'], 60_000);
  // The cleanup after pg_restore drops notes (not in the backup): it waits for this reader.
  const reader = await hold(target, 'SELECT count(*) FROM notes');
  await rollBack(a, id, 'cleanup', 'restore');
  await waitFor('the cleanup blocked on notes', async () => {
    const { rows } = await target.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'DROP TABLE%notes%' AND wait_event_type = 'Lock'`);
    return rows.length ? true : undefined;
  }, 60_000, 50);
  await kill(a);
  await release(reader);

  const b = await server('cleanup-b');
  await waitStatus(control, id, ['restored'], 30_000);
  const rb = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.rollback;
  assert.equal(rb.failure, null);
  assert.equal(rb.reconciliation.phase, 'cleanup');
  assert.equal(rb.reconciliation.restoreCommitted, true);
  assert.deepEqual(rb.dropped, ['public.notes']);
  assert.deepEqual(await appliedOnTarget(target), [['1000_etl-control', 1], ['1100_create-accounts', 1]]);
  assert.equal((await target.query(`SELECT to_regclass('public.notes') AS t`)).rows[0].t, null);
  assert.equal((await target.query('SELECT paused FROM etl_control')).rows[0].paused, false);
  const ledger = await control.query('SELECT count(*)::int AS n FROM migration_ledger WHERE run_id = $1', [id]);
  assert.equal(ledger.rows[0].n, 0);
  await assertNoLeftovers(target);
  await b.stop();
});
