// kill -9 mid-apply, ten times in a row (slow: `npm run test:resilience`).
// Ten environments, each its own target, each with a run of three slow
// migrations (0.8 s each on the real target, instant on preflight's copy). In
// round i the service process that is running applies run i is SIGKILLed while
// one of the migrations executes (which one and how far into it varies), and
// the next process is started on the same control database: it reconciles run
// i and applies run i+1, and is killed in turn. Afterwards: every migration is
// in its target's pgmigrations at most once, the ledger records exactly what
// landed (by the run that landed it), every run ended interrupted with an
// accurate reconciliation, none is left applying, nothing was re-applied, and
// each run's audit trail is one unbroken chain (every status change starts
// where the previous one ended; each landed migration is accounted for by
// exactly one migration.applied or ledger.reconciled event).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { migrationSource as migration } from '../support/migrations.js';
import { callServer, serverSetup, serverToken, startServer, testEnvironment, waitFor, type ServerProcess } from '../scheduler/server-process.js';

const ROUNDS = 10;
const ENVS = Array.from({ length: ROUNDS }, (_, i) => `k${i + 1}`);
// Targets carry a marker row that preflight's schema-only copy lacks. The
// comment names the migration, so the test can see which one is running.
const slow = (name: string) => `SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM marker) THEN 0.8 ELSE 0 END) /* kill-point ${name} */`;
const MIGRATIONS: Record<string, string> = {
  '1000_create-accounts': migration(`CREATE TABLE accounts (id int PRIMARY KEY, email text); ${slow('1000')}`, 'DROP TABLE accounts'),
  '2000_add-note': migration(`ALTER TABLE accounts ADD COLUMN note text; ${slow('2000')}`, 'ALTER TABLE accounts DROP COLUMN note'),
  '3000_add-score': migration(`ALTER TABLE accounts ADD COLUMN score int; ${slow('3000')}`, 'ALTER TABLE accounts DROP COLUMN score'),
};
const NAMES = Object.keys(MIGRATIONS);

let control: TestDatabase;
const targets: Record<string, TestDatabase> = {};
let dir: string;
let env: Record<string, string>;
const servers: ServerProcess[] = [];

const call = (server: ServerProcess, method: string, path: string, who: string, body?: object) => callServer(server, method, path, serverToken(who), body);

before(async () => {
  control = await createTestDatabase('killloop_ctl');
  for (const e of ENVS) {
    targets[e] = await createTestDatabase(`killloop_${e}`);
    await targets[e]!.query('CREATE TABLE marker (x int); INSERT INTO marker VALUES (1)');
  }
  dir = await mkdtemp(join(tmpdir(), 'sf-killloop-'));
  const migrationsDir = join(dir, 'migrations');
  await mkdir(migrationsDir);
  for (const [name, source] of Object.entries(MIGRATIONS)) await writeFile(join(migrationsDir, `${name}.js`), source);
  env = await serverSetup(dir, control.url, Object.fromEntries(ENVS.map((e) => [e, testEnvironment(e, migrationsDir, dir)])), Object.fromEntries(ENVS.map((e) => [e, targets[e]!.url])));
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, ...Object.values(targets)].map((db) => db?.drop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const runStatus = async (id: string) => (await control.query('SELECT status FROM runs WHERE id = $1', [id])).rows[0].status as string;

test(`kill -9 mid-apply ${ROUNDS} times: no double apply, no lost event, every run reconciled`, { timeout: 600_000 }, async () => {
  const started = Date.now();
  let server = await startServer('kill-0', env);
  servers.push(server);

  // All runs are created and preflighted up front; each round approves one.
  const ids: string[] = [];
  for (const e of ENVS) {
    const res = await call(server, 'POST', '/v1/runs', 'alice', { environment: e, description: `kill round ${e}` });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    ids.push(res.body.id);
  }
  await waitFor('every preflight', async () => {
    const statuses = await Promise.all(ids.map(runStatus));
    const failed = statuses.findIndex((s) => s === 'preflight_failed');
    if (failed >= 0) throw new Error(`preflight failed: ${JSON.stringify((await call(server, 'GET', `/v1/runs/${ids[failed]}`, 'vic')).body.error)}`);
    return statuses.every((s) => s === 'awaiting_approval') ? true : undefined;
  }, 120_000);

  const rounds: Array<{ env: string; killedIn: string; delayMs: number; roundMs: number }> = [];
  for (let i = 0; i < ROUNDS; i++) {
    const roundStart = Date.now();
    const id = ids[i]!;
    const e = ENVS[i]!;
    const approved = await call(server, 'POST', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' });
    assert.equal(approved.status, 201, JSON.stringify(approved.body));
    assert.equal(approved.body.status, 'scheduled');

    // Kill while migration `killedIn` executes on the target, `delayMs` into it (it sleeps 800 ms).
    const killedIn = NAMES[i % NAMES.length]!.slice(0, 4);
    const delayMs = (i * 137) % 500;
    await waitFor(`round ${i + 1}: migration ${killedIn} running`, async () => {
      const { rows } = await targets[e]!.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'starforge-run-%-migrate'
        AND state = 'active' AND query LIKE $1`, [`%kill-point ${killedIn}%`]);
      return rows.length ? true : undefined;
    }, 60_000, 25);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    assert.equal(await runStatus(id), 'applying', `round ${i + 1}: the run is applying when the process is killed`);
    server.child.kill('SIGKILL');
    assert.equal(await server.exited, 'SIGKILL');

    // The next process reconciles the run at start-up (and serves the next round).
    server = await startServer(`kill-${i + 1}`, env);
    servers.push(server);
    await waitFor(`round ${i + 1}: reconciliation`, async () => ((await runStatus(id)) === 'interrupted' ? true : undefined), 30_000, 100);
    rounds.push({ env: e, killedIn, delayMs, roundMs: Date.now() - roundStart });
  }

  // A few scheduler ticks later nothing has been picked up again.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const totalMs = Date.now() - started;

  const { rows: runs } = await control.query('SELECT id, environment, status, error, lease_owner FROM runs WHERE id = ANY($1::uuid[])', [ids]);
  const { rows: events } = await control.query('SELECT id, run_id, type, actor, from_status, to_status, details FROM run_events WHERE run_id = ANY($1::uuid[]) ORDER BY id', [ids]);
  const { rows: ledger } = await control.query('SELECT environment, name, run_id FROM migration_ledger ORDER BY environment, name');
  const landedCounts: number[] = [];
  for (const [i, id] of ids.entries()) {
    const e = ENVS[i]!;
    const run = runs.find((r) => r.id === id)!;
    assert.equal(run.status, 'interrupted', `run ${i + 1} (${e}) ended ${run.status}`);
    assert.equal(run.error.code, 'interrupted');
    assert.equal(run.lease_owner, null, `run ${i + 1}: lease dropped`);

    // What is on the target: each migration at most once, in order, a prefix of the run's set.
    const { rows: applied } = await targets[e]!.query('SELECT name, count(*)::int AS n FROM pgmigrations GROUP BY name ORDER BY min(id)');
    for (const a of applied) assert.equal(a.n, 1, `${e}: ${a.name} applied ${a.n} times`);
    const landed = applied.map((a) => a.name as string);
    assert.deepEqual(landed, NAMES.slice(0, landed.length), `${e}: landed in order`);
    landedCounts.push(landed.length);
    // The schema agrees with the table: no migration ran without being recorded, or the other way round.
    const { rows: cols } = await targets[e]!.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts' ORDER BY ordinal_position`);
    const expectedCols = landed.length === 0 ? [] : ['id', 'email', ...(landed.includes('2000_add-note') ? ['note'] : []), ...(landed.includes('3000_add-score') ? ['score'] : [])];
    assert.deepEqual(cols.map((c) => c.column_name), expectedCols, `${e}: schema matches pgmigrations`);
    const { rows: sessions } = await targets[e]!.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND (application_name LIKE 'starforge-run-%' OR application_name IN ('starforge-apply', 'starforge-pause'))`);
    assert.equal(sessions[0].n, 0, `${e}: no apply session left on the target`);

    // The ledger records exactly what landed, by this run.
    assert.deepEqual(ledger.filter((l) => l.environment === e).map((l) => [l.name, l.run_id]), landed.map((n) => [n, id]), `${e}: ledger = target`);

    // The audit trail: one unbroken chain of status changes ending where the run is.
    const mine = events.filter((ev) => ev.run_id === id);
    const transitions = mine.filter((ev) => ev.to_status !== null);
    assert.deepEqual(transitions.map((ev) => ev.to_status), ['created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled', 'applying', 'interrupted'], `run ${i + 1} status path`);
    assert.equal(transitions[0]!.from_status, null);
    for (let k = 1; k < transitions.length; k++) {
      assert.equal(transitions[k]!.from_status, transitions[k - 1]!.to_status, `run ${i + 1}: ${transitions[k]!.type} starts where the previous change ended`);
    }
    assert.equal(mine.filter((ev) => ev.type === 'apply.started').length, 1, `run ${i + 1} started once`);
    assert.equal(mine.filter((ev) => ev.type === 'run.interrupted').length, 1);
    // Every landed migration is accounted for exactly once: by the apply (migration.applied) or by reconciliation.
    const viaApply = mine.filter((ev) => ev.type === 'migration.applied').map((ev) => ev.details.name as string);
    const viaReconcile = mine.filter((ev) => ev.type === 'ledger.reconciled').flatMap((ev) => ev.details.landed as string[]);
    assert.deepEqual([...viaApply, ...viaReconcile].sort(), [...landed].sort(), `run ${i + 1}: events account for each landed migration once`);
    const interrupted = mine.find((ev) => ev.type === 'run.interrupted')!;
    assert.deepEqual(interrupted.details.landed, landed);

    // The stored reconciliation says the same.
    const report = (await call(server, 'GET', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.equal(report.outcome, 'interrupted');
    assert.deepEqual(report.reconciliation.landed, landed);
    assert.deepEqual(report.reconciliation.notLanded, NAMES.slice(landed.length));
  }
  const locks = await control.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 7318
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
  assert.equal(locks.rows[0].n, 0, 'no apply lock left');
  // Every process but the last died by SIGKILL; the last one is still serving.
  assert.equal(server.child.exitCode, null);

  process.stderr.write(`kill -9 x${ROUNDS}: ${totalMs} ms in all; landed per run ${landedCounts.join(',')}; ` +
    `rounds ${rounds.map((r) => `${r.env}@${r.killedIn}+${r.delayMs}ms=${r.roundMs}ms`).join(' ')}\n`);
});
