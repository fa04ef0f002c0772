import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bearer, type TestApp } from '../support/app.js';
import { startApplyApp, type ApplyApp } from '../support/apply-app.js';
import { applyMigrations, FIXTURE_BASE, migrationSource, writeMigrations } from '../support/migrations.js';

let app: ApplyApp;
let t: TestApp;
let dir: string;
const as = (who: string) => ({ authorization: bearer(who as never) });

// Each migration sleeps, recognisably, so the test can tell from pg_stat_activity which one is running.
const sleeper = (n: number) => migrationSource(`ALTER TABLE accounts ADD COLUMN c${n} int; SELECT pg_sleep(1.5) /* live-m${n} */`, `ALTER TABLE accounts DROP COLUMN c${n}`);

before(async () => {
  app = await startApplyApp({ label: 'live', staging: 'verify: { smokeEtl: false, watchMinutes: 0.01 }' });
  ({ t, dir } = app);
});

after(() => app.close());

async function events(id: string): Promise<Array<{ type: string; details: Record<string, unknown>; at: Date }>> {
  return (await t.control.query(`SELECT type, details, created_at AS at FROM run_events WHERE run_id = $1 AND type LIKE 'migration.%' ORDER BY id`, [id])).rows;
}

describe('live migration progress', () => {
  test('migration.started / migration.applied for each of 3 migrations are in the database as they happen, not after the batch', async () => {
    await writeMigrations(dir, FIXTURE_BASE);
    await applyMigrations(t.targets.staging.url, dir, 2);
    await writeMigrations(dir, { ...FIXTURE_BASE, '2000_m1': sleeper(1), '2100_m2': sleeper(2), '2200_m3': sleeper(3) });
    const created = await t.http().post('/v1/runs').set(as('alice')).send({ environment: 'staging', description: 'live' });
    assert.equal(created.status, 201, created.text);
    await t.settle();
    const id = created.body.id as string;
    const approved = await t.http().post(`/v1/runs/${id}/approvals`).set(as('bob')).send({ role: 'engineering', decision: 'approve' });
    assert.ok(['approved', 'scheduled'].includes(approved.body.status), approved.text);
    const res = await t.http().post(`/v1/runs/${id}/apply`).set(as('olga')).send({ confirm: 'staging' });
    assert.equal(res.status, 202, res.text);

    // Wait until migration 3's sleep is running on the target, then read what the control database holds.
    let whileM3: Awaited<ReturnType<typeof events>> | null = null;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const running = await t.targets.staging.query(`SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%live-m3%' AND pid <> pg_backend_pid()`);
      // The events of 2 and 3 are written as 3 starts: on a loaded machine they may trail its first statement by a moment,
      // so read until they are there (or 3 is over, which fails below).
      if (running.rowCount) {
        whileM3 = await events(id);
        if (whileM3.length >= 5) break;
      } else if (whileM3) {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(whileM3, 'migration 3 was seen running');
    const seen = whileM3.map((e) => `${e.type}:${e.details.migration ?? e.details.name}`);
    assert.deepEqual(seen, [
      'migration.started:2000_m1', 'migration.applied:2000_m1',
      'migration.started:2100_m2', 'migration.applied:2100_m2',
      'migration.started:2200_m3',
    ], 'while 3 runs: 1 and 2 started and applied, 3 started, not applied');
    await t.settle();

    const all = await events(id);
    assert.deepEqual(all.map((e) => e.type), ['migration.started', 'migration.applied', 'migration.started', 'migration.applied', 'migration.started', 'migration.applied']);
    const applied = all.filter((e) => e.type === 'migration.applied');
    for (const e of applied) assert.ok((e.details.durationMs as number) >= 1500, `duration recorded: ${JSON.stringify(e.details)}`);
    // Written as each migration ended: about a sleep apart, not in one burst at the end.
    assert.ok(applied[1]!.at.getTime() - applied[0]!.at.getTime() >= 1000, 'applied events are spread over the batch');
    assert.deepEqual(all.filter((e) => e.type === 'migration.started').map((e) => e.details.index), [0, 1, 2]);
    const run = (await t.http().get(`/v1/runs/${id}`).set(as('vic'))).body;
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));

    // The run log: an "applied X in Y ms" line per migration, written as it ended, with its own duration (issue 16 item 9).
    const lines = (await t.control.query(`SELECT message, created_at AS at FROM run_logs WHERE run_id = $1 AND phase = 'migrate' AND message LIKE 'applied %' ORDER BY id`, [id])).rows as Array<{ message: string; at: Date }>;
    assert.deepEqual(lines.map((l) => /^applied (\S+) in /.exec(l.message)?.[1]), ['2000_m1', '2100_m2', '2200_m3'], lines.map((l) => l.message).join(' | '));
    const durations = lines.map((l) => Number(/ in ([\d.]+) ms/.exec(l.message)![1]));
    for (const d of durations) assert.ok(d >= 1500, `each line carries at least its own migration's sleep: ${durations.join(', ')}`);
    // Not the time since the batch started: the third migration alone took less than the first two together.
    assert.ok(durations[2]! < durations[0]! + durations[1]!, `per-migration durations, not cumulative: ${durations.join(', ')}`);
    assert.deepEqual(durations, applied.map((e) => e.details.durationMs), 'the log and the events agree');
    assert.ok(lines[1]!.at.getTime() - lines[0]!.at.getTime() >= 1000 && lines[2]!.at.getTime() - lines[1]!.at.getTime() >= 1000, 'written as each migration ended, not at the batch end');
  });
});
