// kill -9 in the middle of a rehearsal whose migration has just created a
// role (issue 16, isolation): a real service process rehearses a
// non-transactional migration that commits CREATE ROLE and then waits, and is
// SIGKILLed there, before its guard could see the role. Two new processes
// start at once on the same control database: one sweeps what the dead
// rehearsal left (its copy, the role), the other finds nothing to do; the
// resumed preflight then passes (without the sweep its CREATE ROLE would fail
// with `role "…" already exists`) and says what was swept. A role that was
// there before and one another session made meanwhile stay.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { adminQuery, createTestDatabase, type TestDatabase } from '../support/db.js';
import { callServer, serverSetup, serverToken, startServer, testEnvironment, waitFor, type ServerProcess } from '../scheduler/server-process.js';

const tag = randomBytes(4).toString('hex');
const LEAK = `sf_leak_${tag}`;
const BEFORE = `sf_leak_${tag}_before`;
const OTHER = `sf_leak_${tag}_other`;
const HOLD = `sf_leak_${tag}_hold`;

// Three statements, each committed on its own (noTransaction): the role is on the server while the third waits for the kill.
const MIGRATION = `export const up = (pgm) => {
  pgm.noTransaction();
  pgm.sql(${JSON.stringify(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${BEFORE}') THEN CREATE ROLE ${BEFORE} NOLOGIN; END IF; END $$`)});
  pgm.sql(${JSON.stringify(`CREATE ROLE ${LEAK} NOLOGIN`)});
  pgm.sql(${JSON.stringify(`DO $$ BEGIN WHILE EXISTS (SELECT FROM pg_roles WHERE rolname = '${HOLD}') LOOP PERFORM pg_sleep(0.1); END LOOP; END $$`)});
};
export const down = (pgm) => {
  pgm.noTransaction();
  pgm.sql(${JSON.stringify(`DROP ROLE IF EXISTS ${LEAK}`)});
};
`;

let control: TestDatabase;
let target: TestDatabase;
let dir: string;
let env: Record<string, string>;
const servers: ServerProcess[] = [];

const roleExists = async (role: string) => (await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
const call = (server: ServerProcess, method: string, path: string, who: string, body?: object) => callServer(server, method, path, serverToken(who), body);
const copiesOf = async (runId: string) =>
  (await adminQuery(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`sf\\_rehearsal\\_%\\_${runId.replace(/-/g, '')}\\_%`])).rows.map((r) => r.datname as string);

before(async () => {
  control = await createTestDatabase('globals_kill_ctl');
  target = await createTestDatabase('globals_kill_stg');
  dir = await mkdtemp(join(tmpdir(), 'sf-globals-kill-'));
  const migrations = join(dir, 'migrations');
  await mkdir(migrations);
  await writeFile(join(migrations, '1000_reporting-roles.js'), MIGRATION);
  env = await serverSetup(dir, control.url, { staging: testEnvironment('staging', migrations, dir) }, { staging: target.url });
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  // Whatever happened: no copy and no role of this test outlives it (roles are server-wide).
  const runs = control ? (await control.query('SELECT id FROM runs').catch(() => ({ rows: [] as Array<{ id: string }> }))).rows : [];
  for (const { id } of runs) for (const copy of await copiesOf(id)) await adminQuery(`DROP DATABASE IF EXISTS ${copy} WITH (FORCE)`);
  await Promise.all([control, target].map((db) => db?.drop()));
  for (const role of [LEAK, BEFORE, OTHER, HOLD]) await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('kill -9 after a migration committed CREATE ROLE: the next processes drop the role once, keep what is not the rehearsal\'s, and the resumed preflight passes', { timeout: 120_000 }, async () => {
  await adminQuery(`CREATE ROLE ${BEFORE} NOLOGIN`);
  await adminQuery(`CREATE ROLE ${HOLD} NOLOGIN`);
  const a = await startServer('globals-a', env);
  servers.push(a);
  const created = await call(a, 'POST', '/v1/runs', 'alice', { environment: 'staging', description: 'kill me mid-rehearsal' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id as string;

  // The role is committed and the migration waits in its third statement.
  await waitFor('the rehearsal to wait after CREATE ROLE', async () => {
    const { rows } = await adminQuery(`SELECT 1 FROM pg_stat_activity WHERE datname LIKE 'sf\\_rehearsal\\_%' AND state = 'active' AND query LIKE $1`, [`%WHILE EXISTS%${HOLD}%`]);
    return rows.length && (await roleExists(LEAK)) ? true : undefined;
  }, 60_000, 100);
  // Another session's role, made during the rehearsal and named by none of its migrations.
  await adminQuery(`CREATE ROLE ${OTHER} NOLOGIN`);
  a.child.kill('SIGKILL');
  assert.equal(await a.exited, 'SIGKILL');

  // What outlived the process: the copy, the role, and the durable record written before the migration ran.
  assert.equal(await roleExists(LEAK), true);
  assert.equal((await copiesOf(id)).length, 1);
  const record = await control.query('SELECT kind, name, origin FROM rehearsal_globals WHERE run_id = $1', [id]);
  assert.deepEqual(record.rows, [{ kind: 'role', name: LEAK, origin: 'source' }], 'named by the sealed file, absent at the baseline; the guard never saw it');
  assert.equal((await control.query('SELECT status FROM runs WHERE id = $1', [id])).rows[0].status, 'preflight_running');
  // The resumed rehearsal must not wait.
  await adminQuery(`DROP ROLE ${HOLD}`);

  // Two replicas start together: both sweep, both try to resume the preflight.
  const [b, c] = await Promise.all([startServer('globals-b', env), startServer('globals-c', env)]);
  servers.push(b, c);
  const run = await waitFor('the resumed preflight', async () => {
    const r = (await call(b, 'GET', `/v1/runs/${id}`, 'vic')).body;
    return r.status === 'preflight_running' ? undefined : r;
  }, 60_000);
  assert.equal(run.status, 'awaiting_approval', JSON.stringify(run.error));

  assert.equal(await roleExists(LEAK), false, 'the leaked role is gone');
  assert.equal(await roleExists(BEFORE), true, 'a role that existed before the rehearsal stays, though the migration creates it "if not exists"');
  assert.equal(await roleExists(OTHER), true, "another session's role stays");
  assert.deepEqual(await copiesOf(id), []);
  assert.deepEqual((await control.query('SELECT * FROM rehearsal_globals')).rows, []);

  const { rows: events } = await control.query(`SELECT actor, details FROM run_events WHERE run_id = $1 AND type = 'rehearsal.globals_swept'`, [id]);
  assert.equal(events.length, 1, 'swept once, by one of the two');
  assert.equal(events[0].actor, 'system');
  assert.deepEqual(events[0].details.dropped.map((o: { kind: string; name: string; origin: string; cleanup: string }) => [o.kind, o.name, o.origin, o.cleanup]), [['role', LEAK, 'source', 'dropped']]);

  const report = (await call(b, 'GET', `/v1/runs/${id}/preflight`, 'vic')).body.report;
  assert.ok(report.notes.some((n: string) => /earlier attempt of this preflight was cut short.*dropped afterwards: role sf_leak_\w+ \([^)]*1000_reporting-roles\.js\)/.test(n) && n.includes(LEAK)), JSON.stringify(report.notes));
  // The resumed rehearsal created the role again and dropped it itself, as usual.
  assert.ok(report.rehearsal.clusterObjects.some((o: { name: string; cleanup: string }) => o.name === LEAK && o.cleanup === 'dropped'));
  for (const s of [b, c]) assert.doesNotMatch(s.output(), /postgres:\/\/[^@\s]*:[^@\s]*@/, 'no credentials in the logs');
});
