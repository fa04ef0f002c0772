// kill -9 of the service in every phase, ten times (slow: `npm run
// test:resilience`). Seven environments, one per phase; in each round one
// service process drives a run of each to its kill point — a worker pause
// command (pause), pg_dump waiting for a lock (backup), a migration sleeping
// on the target (migrate; alternately in the first and the second migration),
// verification waiting for a lock (verify), the post-apply watch (watch), a
// down migration sleeping (down) and pg_restore waiting for a lock (restore) —
// and is then SIGKILLed, all seven at once. The next process reconciles, and
// the round drives every run on to a status from which its environment takes a
// new run: close (nothing landed: no restore), re-apply, or another down /
// restore; runs left applied are rolled back down for the next round. After
// every round: no child process of a run alive, no run session or advisory
// lock on any target, no apply lock on the control database, every migration
// recorded at most once, nothing applied twice.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { WATCHED_BASE } from '../support/migrations.js';
import { serverSetup, startServer, testEnvironment, waitFor, type ServerProcess } from '../scheduler/server-process.js';
import {
  addPending, alive, appliedOnTarget, call, clearSlow, groupAlive, leftovers, PENDING_NAMES, prepareTarget, recordedProcess, rollBack,
  setSlow, waitSession, waitStatus, writeFixtureMigrations,
} from './recovery-fixture.js';

const ROUNDS = Number(process.env.PHASE_KILL_ROUNDS ?? 10);
const PHASES = ['pause', 'backup', 'migrate', 'verify', 'watch', 'down', 'restore'] as const;
type Phase = (typeof PHASES)[number];
const BASE_APPLIED: Array<[string, number]> = [['1000_etl-control', 1], ['1050_etl-activity', 1], ['1100_create-accounts', 1]];

let control: TestDatabase;
const targets = {} as Record<Phase, TestDatabase>;
let dir: string;
let env: Record<string, string>;
const servers: ServerProcess[] = [];
const holders = new Set<pg.Client>();

async function hold(target: TestDatabase, sql: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: target.url, application_name: 'test-lock-holder' });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('BEGIN');
  await client.query(sql);
  holders.add(client);
  return client;
}

async function release(client: pg.Client | undefined): Promise<void> {
  if (!client) return;
  holders.delete(client);
  await client.end().catch(() => undefined);
}

before(async () => {
  control = await createTestDatabase('phasekill_ctl');
  dir = await mkdtemp(join(tmpdir(), 'sf-phasekill-'));
  // With the ETL activity tables, so the run killed in its watch has one.
  const migrations = await writeFixtureMigrations(dir, WATCHED_BASE);
  for (const p of PHASES) {
    targets[p] = await createTestDatabase(`phasekill_${p}`);
    await prepareTarget(targets[p], migrations, WATCHED_BASE);
  }
  // Verification's last check reads etl_errors (the base creates it): the test holds it there.
  await addPending(migrations);
  const sql = { workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 } };
  const environments: Record<string, object> = {};
  for (const p of PHASES) environments[p] = testEnvironment(p, migrations, dir, { ...sql, backup: { method: 'pg_dump', dir: join(dir, 'backups', p), lockWaitTimeoutMs: 300_000 } });
  environments.pause = testEnvironment('pause', migrations, dir, { workers: { pause: { method: 'command', pause: 'sleep 300; echo done', resume: 'true' }, pauseTimeoutMs: 600_000 } });
  environments.watch = testEnvironment('watch', migrations, dir, { ...sql, verify: { smokeEtl: false, watchMinutes: 0.1 } });
  env = { ...(await serverSetup(dir, control.url, environments, Object.fromEntries(PHASES.map((p) => [p, targets[p].url])))), SCHEDULER: 'off', BACKFILLS: 'off' };
});

after(async () => {
  await Promise.all([...holders].map((h) => h.end().catch(() => undefined)));
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, ...Object.values(targets)].map((db) => db?.drop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function start(name: string): Promise<ServerProcess> {
  const s = await startServer(name, env);
  servers.push(s);
  return s;
}

async function created(s: ServerProcess, phase: Phase, round: number): Promise<string> {
  const res = await call(s, 'POST', '/v1/runs', 'alice', { environment: phase, description: `round ${round} ${phase}` });
  assert.equal(res.status, 201, `${phase}: ${JSON.stringify(res.body)}`);
  await waitStatus(control, res.body.id, ['awaiting_approval'], 120_000);
  return res.body.id as string;
}

async function approveAndApply(s: ServerProcess, id: string, phase: Phase): Promise<void> {
  const approved = await call(s, 'POST', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
  assert.equal(approved.status, 201, JSON.stringify(approved.body));
  const applied = await call(s, 'POST', `/v1/runs/${id}/apply`, 'olga', { confirm: phase });
  assert.equal(applied.status, 202, `${phase}: ${JSON.stringify(applied.body)}`);
}

async function eventsOf(id: string): Promise<Array<{ type: string; details: Record<string, unknown> }>> {
  return (await control.query('SELECT type, details FROM run_events WHERE run_id = $1 ORDER BY id', [id])).rows;
}

/** Rolls a succeeded run back down so the next round's run has its migrations pending again. */
async function downAgain(s: ServerProcess, id: string, phase: Phase): Promise<void> {
  await rollBack(s, id, phase, 'down');
  await waitStatus(control, id, ['rolled_back'], 60_000);
}

test(`kill -9 in each of ${PHASES.length} phases, ${ROUNDS} times: every run reconciled, no orphan, nothing applied twice`, { timeout: 1_500_000 }, async () => {
  const started = Date.now();
  let server = await start('phasekill-0');
  const outcomes: Record<Phase, string[]> = Object.fromEntries(PHASES.map((p) => [p, []])) as unknown as Record<Phase, string[]>;
  for (let round = 1; round <= ROUNDS; round++) {
    const roundStart = Date.now();
    // Every environment must take a new run: the previous round left them all free.
    const ids = Object.fromEntries(await Promise.all(PHASES.map(async (p) => [p, await created(server, p, round)] as const))) as Record<Phase, string>;
    const lockers: Partial<Record<Phase, pg.Client>> = {};
    const pgids: number[] = [];
    const pids: number[] = [];

    // down and restore start from a succeeded run.
    await Promise.all((['down', 'restore'] as const).map(async (p) => {
      await approveAndApply(server, ids[p], p);
      await waitStatus(control, ids[p], ['succeeded'], 60_000);
    }));
    await setSlow(targets.down, '3000-down', 300_000);
    await rollBack(server, ids.down, 'down', 'down');
    lockers.restore = await hold(targets.restore, 'SELECT count(*) FROM accounts');
    await rollBack(server, ids.restore, 'restore', 'restore');

    // The kill point of the migrate phase alternates: nothing landed yet, or the first migration landed.
    const migrateStep = round % 2 === 1 ? '2000-up' : '3000-up';
    await setSlow(targets.migrate, migrateStep, 300_000);
    await setSlow(targets.verify, '3000-up', 1500);
    await approveAndApply(server, ids.pause, 'pause');
    lockers.backup = await hold(targets.backup, 'LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE');
    await approveAndApply(server, ids.backup, 'backup');
    await approveAndApply(server, ids.migrate, 'migrate');
    await approveAndApply(server, ids.verify, 'verify');
    // Once the backup is taken, verification's read of etl_errors is made to wait (pg_dump needed it first).
    await waitFor('verify: backup taken', async () => ((await eventsOf(ids.verify)).some((e) => e.type === 'backup.verified') ? true : undefined), 60_000, 25);
    lockers.verify = await hold(targets.verify, 'LOCK TABLE etl_errors IN ACCESS EXCLUSIVE MODE');

    // Every kill point reached.
    const pause = await recordedProcess(control, ids.pause, 'pause');
    pgids.push(pause.pgid);
    await waitFor('pause: the command\'s sleep', async () => (groupAlive(pause.pgid).length >= 2 ? true : undefined), 30_000, 50);
    const dump = await recordedProcess(control, ids.backup, 'backup');
    pids.push(dump.pid);
    await waitSession(targets.backup, ids.backup, 'backup');
    await waitSession(targets.migrate, ids.migrate, 'migrate', `%${migrateStep}%`);
    await waitFor('verify: waiting on etl_errors', async () => {
      const { rows } = await targets.verify.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%FROM etl_errors%' AND wait_event_type = 'Lock'`);
      return rows.length ? true : undefined;
    }, 60_000, 25);
    await waitSession(targets.down, ids.down, 'down', '%3000-down%');
    const restore = await recordedProcess(control, ids.restore, 'restore');
    pids.push(restore.pid);
    await waitSession(targets.restore, ids.restore, 'restore');
    // Last, so its watch is still running at the kill.
    await approveAndApply(server, ids.watch, 'watch');
    await waitStatus(control, ids.watch, ['monitoring'], 60_000);
    await new Promise((resolve) => setTimeout(resolve, (round * 137) % 400));
    const statuses = await Promise.all(PHASES.map(async (p) => (await control.query('SELECT status FROM runs WHERE id = $1', [ids[p]])).rows[0].status as string));
    assert.deepEqual(statuses, ['applying', 'applying', 'applying', 'verifying', 'monitoring', 'rolling_back', 'restoring'], `round ${round}: every run at its kill point`);

    server.child.kill('SIGKILL');
    assert.equal(await server.exited, 'SIGKILL');
    for (const pid of pids) await waitFor(`round ${round}: pid ${pid} gone with the service`, async () => (alive(pid) ? undefined : true), 10_000, 50);

    server = await start(`phasekill-${round}`);
    // What start-up reconciliation made of each.
    await Promise.all([
      waitStatus(control, ids.pause, ['interrupted'], 30_000),
      waitStatus(control, ids.backup, ['interrupted'], 30_000),
      waitStatus(control, ids.migrate, ['interrupted'], 30_000),
      waitStatus(control, ids.verify, ['interrupted'], 30_000),
      waitStatus(control, ids.down, ['failed'], 30_000),
      waitStatus(control, ids.restore, ['failed'], 30_000),
    ]);
    for (const pgid of pgids) assert.deepEqual(groupAlive(pgid), [], `round ${round}: the pause command's group was killed`);
    const phaseOf = async (id: string) => (await call(server, 'GET', `/v1/runs/${id}/report`, 'vic')).body.apply.report.reconciliation;
    for (const p of ['pause', 'backup', 'migrate', 'verify'] as const) assert.equal((await phaseOf(ids[p])).phase, p, `round ${round}: ${p} reconciled in its phase`);

    // Nothing landed: closed, no restore.
    await release(lockers.backup);
    const closable: Phase[] = migrateStep === '2000-up' ? ['pause', 'backup', 'migrate'] : ['pause', 'backup'];
    for (const p of closable) {
      const closed = await call(server, 'POST', `/v1/runs/${ids[p]}/close`, 'olga', { reason: `round ${round}` });
      assert.equal(closed.status, 200, `round ${round} ${p}: ${JSON.stringify(closed.body)}`);
      outcomes[p].push('closed');
    }
    // Something landed: re-applied, then rolled back down for the next round.
    await clearSlow(targets.migrate);
    await clearSlow(targets.verify);
    await release(lockers.verify);
    const reapply: Phase[] = migrateStep === '2000-up' ? ['verify'] : ['migrate', 'verify'];
    for (const p of reapply) {
      const refused = await call(server, 'POST', `/v1/runs/${ids[p]}/close`, 'olga', { reason: 'no' });
      assert.equal(refused.status, 409, `round ${round} ${p}: close refused when something landed`);
      const res = await call(server, 'POST', `/v1/runs/${ids[p]}/reapply`, 'olga', { confirm: p, reason: `round ${round}` });
      assert.equal(res.status, 202, `round ${round} ${p}: ${JSON.stringify(res.body)}`);
    }
    await Promise.all(reapply.map((p) => waitStatus(control, ids[p], ['succeeded'], 60_000)));
    for (const p of reapply) outcomes[p].push('reapplied');
    // The watch ends on the new process, on time.
    await waitStatus(control, ids.watch, ['succeeded'], 60_000);
    outcomes.watch.push('taken over');
    // The interrupted down and restore: asked again.
    await clearSlow(targets.down);
    await release(lockers.restore);
    const rbDown = (await call(server, 'GET', `/v1/runs/${ids.down}/report`, 'vic')).body.rollback;
    assert.equal(rbDown.failure.code, 'rollback-interrupted');
    const rbRestore = (await call(server, 'GET', `/v1/runs/${ids.restore}/report`, 'vic')).body.rollback;
    assert.equal(rbRestore.failure.code, 'restore-interrupted');
    assert.equal(rbRestore.reconciliation.restoreCommitted, false);
    await rollBack(server, ids.down, 'down', 'down');
    await rollBack(server, ids.restore, 'restore', 'restore');
    await Promise.all([waitStatus(control, ids.down, ['rolled_back'], 60_000), waitStatus(control, ids.restore, ['restored'], 60_000)]);
    outcomes.down.push('down again');
    outcomes.restore.push('restored again');
    await Promise.all([...reapply, 'watch' as const].map((p) => downAgain(server, ids[p], p)));

    // Nothing left behind, nothing twice.
    for (const p of PHASES) {
      assert.deepEqual(await leftovers(control, targets[p]), { sessions: 0, targetLocks: 0, applyLocks: 0, openProcesses: 0 }, `round ${round} ${p}: nothing left behind`);
      assert.deepEqual(await appliedOnTarget(targets[p]), BASE_APPLIED, `round ${round} ${p}: back at the base for the next round`);
      assert.equal((await targets[p].query('SELECT paused FROM etl_control')).rows[0].paused, false, `round ${round} ${p}: the ETL runs`);
      const events = await eventsOf(ids[p]);
      const applied = events.filter((e) => e.type === 'migration.applied' || e.type === 'ledger.reconciled').flatMap((e) => (e.type === 'migration.applied' ? [e.details.name as string] : ((e.details.landed as string[] | undefined) ?? [])));
      for (const name of PENDING_NAMES) assert.ok(applied.filter((n) => n === name).length <= 1, `round ${round} ${p}: ${name} applied at most once (${applied.join(', ')})`);
      assert.equal(events.filter((e) => e.type === 'apply.started').length, 1);
      assert.equal((await control.query('SELECT count(*)::int AS n FROM rollback_requests WHERE run_id = $1 AND status IN (\'awaiting_approval\', \'running\')', [ids[p]])).rows[0].n, 0);
    }
    for (const p of closable) {
      assert.equal((await control.query('SELECT count(*)::int AS n FROM rollback_requests WHERE run_id = $1', [ids[p]])).rows[0].n, 0, `round ${round} ${p}: closed without any rollback or restore`);
    }
    process.stderr.write(`round ${round}: ${Date.now() - roundStart} ms\n`);
  }
  // The environments take a new run after the last round too.
  for (const p of PHASES) {
    const next = await call(server, 'POST', '/v1/runs', 'alice', { environment: p, description: 'after the loop' });
    assert.equal(next.status, 201, `${p}: ${JSON.stringify(next.body)}`);
  }
  process.stderr.write(`kill -9 in ${PHASES.length} phases x${ROUNDS}: ${Date.now() - started} ms; ${JSON.stringify(outcomes)}\n`);
});
