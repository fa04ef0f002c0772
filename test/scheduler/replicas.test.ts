// Two service processes (`node dist/src/server.js` twice: same control
// database, different ports, scheduler on, 1-second ticks) and due runs in
// six environments, two rounds: every run is applied exactly once, both
// processes take part, and no environment ever has two applies at a time.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { migrationSource as migration } from '../support/migrations.js';
import { callServer, serverSetup, serverToken, startServer, testEnvironment, waitFor, type ServerProcess } from './server-process.js';

const ENVS = ['e1', 'e2', 'e3', 'e4', 'e5', 'e6'];
// Real targets carry a marker row the rehearsal copy (schema only) lacks, so
// each apply takes a moment there without slowing preflight down.
const SLOW_ON_TARGET = 'SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM marker) THEN 1.5 ELSE 0 END)';
const ROUND1 = {
  '1000_create-accounts': migration(`CREATE TABLE accounts (id int PRIMARY KEY, email text); ${SLOW_ON_TARGET}`, 'DROP TABLE accounts'),
};
const ROUND2 = { ...ROUND1, '2000_add-note': migration(`ALTER TABLE accounts ADD COLUMN note text; ${SLOW_ON_TARGET}`, 'ALTER TABLE accounts DROP COLUMN note') };

let control: TestDatabase;
const targets: Record<string, TestDatabase> = {};
let dir: string;
let migrationsDir: string;
let servers: ServerProcess[] = [];

const call = (server: ServerProcess, method: string, path: string, who: string, body?: object) => callServer(server, method, path, serverToken(who), body);

before(async () => {
  control = await createTestDatabase('replicas_ctl');
  for (const env of ENVS) {
    targets[env] = await createTestDatabase(`replicas_${env}`);
    await targets[env]!.query('CREATE TABLE marker (x int); INSERT INTO marker VALUES (1)');
  }
  dir = await mkdtemp(join(tmpdir(), 'sf-replicas-'));
  migrationsDir = join(dir, 'migrations');
  await import('node:fs/promises').then((fs) => fs.mkdir(migrationsDir));
  for (const [name, source] of Object.entries(ROUND1)) await writeFile(join(migrationsDir, `${name}.js`), source);
  const env = await serverSetup(dir, control.url, Object.fromEntries(ENVS.map((e) => [e, testEnvironment(e, migrationsDir, dir)])), Object.fromEntries(ENVS.map((e) => [e, targets[e]!.url])));
  // Start one after the other: both migrate the same control database at start-up.
  servers = [await startServer('replica-a', env), await startServer('replica-b', env)];
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, ...Object.values(targets)].map((db) => db?.drop()));
  await rm(dir, { recursive: true, force: true });
});

async function round(label: string): Promise<string[]> {
  // Requests spread over both replicas; each replica runs preflight for the runs it created.
  const ids: string[] = [];
  for (const [i, env] of ENVS.entries()) {
    const res = await call(servers[i % 2]!, 'POST', '/v1/runs', 'alice', { environment: env, description: `${label} ${env}` });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    ids.push(res.body.id);
  }
  await waitFor('preflights', async () => {
    const runs = await Promise.all(ids.map((id) => call(servers[0]!, 'GET', `/v1/runs/${id}`, 'vic')));
    const stuck = runs.find((r) => !['preflight_running', 'created', 'awaiting_approval'].includes(r.body.status));
    if (stuck) throw new Error(`preflight failed: ${JSON.stringify(stuck.body)}`);
    return runs.every((r) => r.body.status === 'awaiting_approval') ? true : undefined;
  }, 60_000);
  // All due at the same moment: both replicas' ticks compete for them.
  const approved = await Promise.all(ids.map((id, i) => call(servers[i % 2]!, 'POST', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' })));
  for (const a of approved) assert.equal(a.body.status, 'scheduled', JSON.stringify(a.body));
  await waitFor('applies', async () => {
    const runs = await Promise.all(ids.map((id) => call(servers[1]!, 'GET', `/v1/runs/${id}`, 'vic')));
    const bad = runs.find((r) => !['scheduled', 'applying', 'verifying', 'monitoring', 'succeeded'].includes(r.body.status));
    if (bad) throw new Error(`run ended ${bad.body.status}: ${JSON.stringify(bad.body.error)}`);
    return runs.every((r) => r.body.status === 'succeeded') ? true : undefined;
  }, 90_000, 250);
  return ids;
}

test('two replicas apply every due run exactly once, never two at a time on one environment', { timeout: 240_000 }, async () => {
  const first = await round('round 1');
  for (const [name, source] of Object.entries(ROUND2)) await writeFile(join(migrationsDir, `${name}.js`), source);
  const second = await round('round 2');
  const all = [...first, ...second];

  // The audit trail: each run started once, by the scheduler, applying each of its migrations once.
  const { rows: events } = await control.query(
    `SELECT run_id, environment, type, actor, details, created_at FROM run_events WHERE run_id = ANY($1::uuid[]) ORDER BY id`, [all]);
  const instances = new Set<string>();
  for (const id of all) {
    const mine = events.filter((e) => e.run_id === id);
    const started = mine.filter((e) => e.type === 'apply.started');
    assert.equal(started.length, 1, `run ${id} started ${started.length} times`);
    assert.equal(started[0].actor, 'scheduler');
    instances.add(started[0].details.instance);
    assert.equal(mine.filter((e) => e.type === 'migration.applied').length, 1, `run ${id} applies one migration`);
    assert.equal(mine.filter((e) => e.type === 'run.succeeded').length, 1);
  }
  assert.equal(instances.size, 2, `both replicas applied runs: ${[...instances].join(', ')}`);

  // Per environment: apply intervals never overlap, and each migration landed once, ledgered once.
  for (const env of ENVS) {
    const spans = all.filter((id) => events.some((e) => e.run_id === id && e.environment === env)).map((id) => {
      const start = events.find((e) => e.run_id === id && e.type === 'apply.started').created_at.getTime();
      const end = events.find((e) => e.run_id === id && e.type === 'run.succeeded').created_at.getTime();
      return [start, end] as const;
    }).sort((a, b) => a[0] - b[0]);
    assert.equal(spans.length, 2);
    assert.ok(spans[0]![1] <= spans[1]![0], `${env}: applies overlap`);
    const { rows: applied } = await targets[env]!.query('SELECT name, count(*)::int AS n FROM pgmigrations GROUP BY name ORDER BY name');
    assert.deepEqual(applied, [{ name: '1000_create-accounts', n: 1 }, { name: '2000_add-note', n: 1 }]);
  }
  const { rows: ledger } = await control.query('SELECT environment, name, run_id FROM migration_ledger ORDER BY environment, name');
  assert.equal(ledger.length, ENVS.length * 2);
  for (const l of ledger) {
    const applies = events.filter((e) => e.type === 'migration.applied' && e.environment === l.environment && e.details.name === l.name);
    assert.equal(applies.length, 1, `${l.environment}/${l.name} applied once`);
    assert.equal(applies[0].run_id, l.run_id);
  }

  // Nothing is left holding an apply lock or a lease.
  const locks = await control.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = 7318
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
  assert.equal(locks.rows[0].n, 0);
  const leases = await control.query('SELECT count(*)::int AS n FROM runs WHERE lease_owner IS NOT NULL');
  assert.equal(leases.rows[0].n, 0);
});
