// The post-apply watch ends on time on any replica. Two service processes on
// one control database: A (scheduler on) applies the run, B (SCHEDULER=off:
// it never starts applies) only sweeps. A is stopped during the watch — by
// kill -9, then by a graceful SIGTERM — and B takes the run over once A's
// lease lapses (decided by the run's apply lock and lease in SQL), ends the
// watch at the moment stored with the run, and records the takeover.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { WATCHED_BASE } from '../support/migrations.js';
import { serverSetup, startServer, testEnvironment, type ServerProcess } from '../scheduler/server-process.js';
import { addPending, call, createApproved, eventTypes, leftovers, prepareTarget, waitStatus, writeFixtureMigrations } from './recovery-fixture.js';

const WATCH_MINUTES = 0.15; // 9 s

let control: TestDatabase;
const targets: Record<string, TestDatabase> = {};
let dir: string;
let env: Record<string, string>;
const servers: ServerProcess[] = [];

before(async () => {
  control = await createTestDatabase('takeover_ctl');
  dir = await mkdtemp(join(tmpdir(), 'sf-takeover-'));
  // With the ETL activity tables: a run on a target without them has nothing to watch and no watch.
  const migrations = await writeFixtureMigrations(dir, WATCHED_BASE);
  for (const e of ['w1', 'w2']) {
    targets[e] = await createTestDatabase(`takeover_${e}`);
    await prepareTarget(targets[e]!, migrations, WATCHED_BASE);
  }
  await addPending(migrations);
  const environments = Object.fromEntries(['w1', 'w2'].map((e) => [e, testEnvironment(e, migrations, dir, {
    workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 }, verify: { smokeEtl: false, watchMinutes: WATCH_MINUTES },
  })]));
  env = { ...(await serverSetup(dir, control.url, environments, { w1: targets.w1!.url, w2: targets.w2!.url })), APPLY_LEASE_SECONDS: '2', BACKFILLS: 'off' };
});

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all([control, ...Object.values(targets)].map((db) => db?.drop()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function monitoring(id: string): Promise<{ endsAt: string; owner: string }> {
  await waitStatus(control, id, ['monitoring'], 60_000);
  const { rows } = await control.query(`SELECT apply_state #>> '{watch,window,endsAt}' AS ends_at, lease_owner FROM runs WHERE id = $1`, [id]);
  return { endsAt: rows[0].ends_at, owner: rows[0].lease_owner };
}

async function assertTakenOver(b: ServerProcess, id: string, watch: { endsAt: string; owner: string }, handedOff: boolean): Promise<void> {
  await waitStatus(control, id, ['succeeded', 'degraded'], 60_000);
  const report = (await call(b, 'GET', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
  assert.equal(report.outcome, 'succeeded');
  assert.ok(Date.parse(report.finishedAt) >= Date.parse(watch.endsAt), `the watch ended at ${report.finishedAt}, not before its end ${watch.endsAt}`);
  assert.equal(report.watch.observed, true);
  assert.equal(report.watchTakenOverBy.length, 1);
  assert.notEqual(report.watchTakenOverBy[0], watch.owner);
  // The report holds what the applying process did before it stopped.
  assert.equal(report.verification.length > 0, true);
  assert.deepEqual(report.migrations.map((m: { name: string }) => m.name), ['2000_add-note', '3000_create-notes']);
  const { rows } = await control.query(`SELECT details FROM run_events WHERE run_id = $1 AND type = 'watch.taken_over'`, [id]);
  assert.equal(rows.length, 1);
  // A process that handed the watch off gave its lease back; one killed left it to lapse.
  assert.equal(rows[0].details.previousOwner, handedOff ? null : watch.owner);
  assert.equal(rows[0].details.endsAt, watch.endsAt);
  const types = await eventTypes(control, id);
  assert.equal(types.filter((t) => t === 'run.interrupted').length, 0, 'a watch is carried on, never interrupted');
  assert.equal(types.filter((t) => t === 'watch.handed_off').length, handedOff ? 1 : 0);
  assert.equal((await control.query('SELECT lease_owner FROM runs WHERE id = $1', [id])).rows[0].lease_owner, null);
}

test('kill -9 during the watch: a replica with the scheduler off carries it on and ends it on time', { timeout: 120_000 }, async () => {
  const b = await startServer('takeover-b', { ...env, SCHEDULER: 'off' });
  servers.push(b);
  const a = await startServer('takeover-a', env);
  servers.push(a);
  const id = await createApproved(a, control, 'w1');
  const watch = await monitoring(id);
  a.child.kill('SIGKILL');
  assert.equal(await a.exited, 'SIGKILL');
  await assertTakenOver(b, id, watch, false);
  assert.deepEqual(await leftovers(control, targets.w1!), { sessions: 0, targetLocks: 0, applyLocks: 0, openProcesses: 0 });
  await b.stop();
});

test('SIGTERM during the watch: the stopping process hands the watch over at once instead of cutting it short', { timeout: 120_000 }, async () => {
  const b = await startServer('handoff-b', { ...env, SCHEDULER: 'off' });
  servers.push(b);
  const a = await startServer('handoff-a', env);
  servers.push(a);
  const id = await createApproved(a, control, 'w2');
  const watch = await monitoring(id);
  const stopped = Date.now();
  assert.equal(await a.stop(), '0', a.output());
  assert.ok(Date.now() < Date.parse(watch.endsAt), 'A stopped before the watch would have ended: it did not wait for it');
  assert.equal((await control.query('SELECT status FROM runs WHERE id = $1', [id])).rows[0].status, 'monitoring', `still monitoring after A stopped (${Date.now() - stopped} ms)`);
  await assertTakenOver(b, id, watch, true);
  await b.stop();
});
