// The scheduler in one process on real PostgreSQL, ticked by hand with a
// controllable clock: approval -> scheduled for a fitting window, "now" and
// "at" modes, the windows API, window overrides on the apply API, the tick
// starting, rescheduling and refusing runs, the lease sweep and the
// reconciliation of an interrupted run.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { applyMigrations, migrationSource as migration, writeMigrations, FIXTURE_BASE, FIXTURES } from '../support/migrations.js';

let t: TestApp;
let stagingDir: string;
let productionDir: string;
let backups: string;

const HOUR = 3_600_000;
const MIN = 60_000;
// Production windows, relative to the real clock (approvals schedule from it):
// a 1-minute window in 3 hours (too short for any estimate plus margin) and a
// 60-minute window an hour later; a freeze 10 days ahead.
const base = new Date();
const H = (base.getUTCHours() + 3) % 24;
const H1 = (H + 1) % 24;
const dayStart = (offsetDays: number) => new Date(Date.UTC(base.getUTCFullYear(), base.getUTCMonth(), base.getUTCDate() + offsetDays));
const FREEZE = { from: dayStart(10), to: dayStart(12), reason: 'scheduler test freeze' };

/** The next instant after `from` whose UTC time is hour:00. */
function nextAtHour(hour: number, from: Date): Date {
  const d = new Date(from);
  d.setUTCMinutes(0, 0, 0);
  while (d.getUTCHours() !== hour || d.getTime() <= from.getTime()) d.setTime(d.getTime() + HOUR);
  return d;
}

const BASE = FIXTURE_BASE;
const ADD_NOTE = FIXTURES.addNote;
const ADD_SCORE = FIXTURES.addScore;
// Takes measurable time in the rehearsal too, so the estimate is never 0.
const SLOW_TABLE = migration('CREATE TABLE things (id int PRIMARY KEY); SELECT pg_sleep(0.1)', 'DROP TABLE things');

const as = (who: Subject) => ({ authorization: bearer(who) });
async function api(method: 'get' | 'post', path: string, who: Subject, body?: object) {
  const req = t.http()[method](path).set(as(who));
  return body === undefined ? req : req.send(body);
}
const tick = (now: Date) => t.app.services.scheduler.tick(now);
const getRun = async (id: string) => (await api('get', `/v1/runs/${id}`, 'vic')).body;
const events = async (id: string) => (await api('get', `/v1/runs/${id}/events`, 'vic')).body as Array<{ type: string; actor: string; from: string | null; to: string | null; details: Record<string, unknown> }>;

async function created(environment: string, extra: object = {}): Promise<string> {
  const res = await api('post', '/v1/runs', 'alice', { environment, description: `scheduler ${environment}`, ...extra });
  assert.equal(res.status, 201, res.text);
  await t.settle();
  const run = await getRun(res.body.id);
  assert.equal(run.status, 'awaiting_approval', JSON.stringify(run.error));
  return res.body.id as string;
}

async function approve(id: string, environment: string) {
  if (environment === 'production') {
    assert.equal((await api('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' })).status, 201);
    return (await api('post', `/v1/runs/${id}/approvals`, 'carol', { role: 'sre', decision: 'approve' })).body;
  }
  return (await api('post', `/v1/runs/${id}/approvals`, 'bob', { role: 'engineering', decision: 'approve' })).body;
}

before(async () => {
  stagingDir = await mkdtemp(join(tmpdir(), 'sf-sched-stg-'));
  productionDir = await mkdtemp(join(tmpdir(), 'sf-sched-prd-'));
  backups = await mkdtemp(join(tmpdir(), 'sf-sched-backups-'));
  const common = `backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 },
      verify: { smokeEtl: false, watchMinutes: 0 }`;
  const config = `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(stagingDir)}, approvals: { required: ['any'] }, ${common} },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(productionDir)}, approvals: { required: ['engineering', 'sre'] },
      // These tests are about the scheduler taking approved runs; confirm mode has its own tests (test/policy).
      apply: { mode: 'auto' },
      windows: [{ cron: '0 ${H} * * *', durationMinutes: 1, timezone: 'UTC' }, { cron: '0 ${H1} * * *', durationMinutes: 60, timezone: 'UTC' }],
      freezes: [{ from: '${FREEZE.from.toISOString()}', to: '${FREEZE.to.toISOString()}', reason: '${FREEZE.reason}' }], ${common} } } };`;
  t = await startTestApp({ label: 'scheduler', migrationConfigSource: config });
});

after(async () => {
  await t.close();
  for (const d of [stagingDir, productionDir, backups]) await rm(d, { recursive: true, force: true });
});

afterEach(async () => {
  await t.settle();
  await t.control.query(`UPDATE runs SET status = 'cancelled' WHERE status IN ('created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled', 'applying', 'verifying', 'monitoring', 'interrupted', 'rolling_back', 'restoring')`);
  for (const db of [t.targets.staging, t.targets.production]) {
    await db.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;');
  }
});

describe('windows API', () => {
  test('GET /v1/environments/:name/windows lists the next windows; count 1..100, default 5; 404 for an unknown environment', async () => {
    const now = Date.now();
    const res = await api('get', '/v1/environments/production/windows?count=4', 'vic');
    assert.equal(res.status, 200, res.text);
    const ws = res.body as Array<{ start: string; end: string }>;
    assert.equal(ws.length, 4);
    const short = nextAtHour(H, new Date(now));
    const long = nextAtHour(H1, new Date(now));
    const expected = [[short, 1], [long, 60], [new Date(short.getTime() + 24 * HOUR), 1], [new Date(long.getTime() + 24 * HOUR), 60]] as const;
    for (const [i, [start, minutes]] of expected.entries()) {
      assert.equal(ws[i]!.start, start.toISOString(), `window ${i}`);
      assert.equal(Date.parse(ws[i]!.end) - Date.parse(ws[i]!.start), minutes * MIN);
    }
    assert.equal((await api('get', '/v1/environments/production/windows', 'vic')).body.length, 5, 'default count');
    const many = (await api('get', '/v1/environments/production/windows?count=100', 'vic')).body as Array<{ start: string; end: string }>;
    assert.equal(many.length, 100);
    for (const w of many) {
      assert.ok(Date.parse(w.end) <= FREEZE.from.getTime() || Date.parse(w.start) >= FREEZE.to.getTime(), `window ${w.start} overlaps the freeze`);
    }
    assert.deepEqual((await api('get', '/v1/environments/staging/windows', 'vic')).body, [], 'no windows: any time');
    for (const q of ['count=0', 'count=101', 'count=abc', 'count=2&x=1']) {
      const bad = await api('get', `/v1/environments/production/windows?${q}`, 'vic');
      assert.equal(bad.status, 400, `${q}: ${bad.text}`);
      assert.match(String(bad.headers['content-type']), /problem\+json/);
    }
    const unknown = await api('get', '/v1/environments/nope/windows', 'vic');
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.detail, /Unknown environment "nope"/);
    assert.equal((await t.http().get('/v1/environments/production/windows')).status, 401);
  });

  test('GET /v1/environments says whether a window is open and when the next one opens', async () => {
    const envs = Object.fromEntries(((await api('get', '/v1/environments', 'vic')).body as Array<{ name: string }>).map((e) => [e.name, e])) as Record<string, Record<string, unknown>>;
    assert.equal(envs.staging!.windowOpen, true, 'no windows and no freeze: open');
    assert.equal(envs.staging!.nextWindow, null);
    assert.equal(envs.staging!.currentWindow, null);
    assert.equal(envs.production!.windowOpen, false);
    assert.equal(envs.production!.currentWindow, null);
    const short = nextAtHour(H, new Date());
    assert.deepEqual(envs.production!.nextWindow, { start: short.toISOString(), end: new Date(short.getTime() + MIN).toISOString() });
    assert.ok(Array.isArray(envs.production!.pending), 'the earlier fields are still there');
  });
});

describe('scheduling on approval', () => {
  test('mode window: scheduled for the first window the estimate plus margin fits (the 1-minute window is passed over), audited', async () => {
    await writeMigrations(productionDir, { '1000_slow-table': SLOW_TABLE });
    const id = await created('production');
    const run = await approve(id, 'production');
    assert.equal(run.status, 'scheduled');
    const expected = nextAtHour(H1, new Date());
    assert.equal(run.scheduledFor, expected.toISOString());
    const scheduled = (await events(id)).find((e) => e.type === 'run.scheduled')!;
    assert.equal(scheduled.actor, 'scheduler');
    assert.equal(scheduled.from, 'approved');
    assert.equal(scheduled.details.mode, 'window');
    assert.ok((scheduled.details.estimatedMs as number) >= 100, `estimate ${scheduled.details.estimatedMs}`);
    assert.equal(scheduled.details.marginMs, 60_000);
    assert.deepEqual(scheduled.details.window, { start: expected.toISOString(), end: new Date(expected.getTime() + 60 * MIN).toISOString() });
    const envs = (await api('get', '/v1/environments', 'vic')).body as Array<{ name: string; activeRun: unknown }>;
    assert.deepEqual(envs.find((e) => e.name === 'production')!.activeRun, { id, status: 'scheduled' });
  });

  test('mode now: the next window, however short', async () => {
    await writeMigrations(productionDir, { '1000_slow-table': SLOW_TABLE });
    const id = await created('production', { schedule: { mode: 'now' } });
    const run = await approve(id, 'production');
    assert.equal(run.status, 'scheduled');
    assert.equal(run.scheduledFor, nextAtHour(H, new Date()).toISOString());
  });

  test('mode at: refused (422) outside a window or in a freeze; inside a window it is the scheduled time', async () => {
    await writeMigrations(productionDir, { '1000_slow-table': SLOW_TABLE });
    const long = nextAtHour(H1, new Date());
    const outside = await api('post', '/v1/runs', 'alice', { environment: 'production', description: 'at outside', schedule: { mode: 'at', at: new Date(long.getTime() + 90 * MIN).toISOString() } });
    assert.equal(outside.status, 422, outside.text);
    assert.match(outside.body.detail, /is not inside a maintenance window/);
    assert.equal(outside.body.errors[0].path, 'body/schedule/at');
    // The first window start inside the freeze (a day later could be its end, when the window opens at midnight).
    const frozenAt = nextAtHour(H1, FREEZE.from);
    const frozen = await api('post', '/v1/runs', 'alice', { environment: 'production', description: 'at frozen', schedule: { mode: 'at', at: new Date(frozenAt.getTime() + 10 * MIN).toISOString() } });
    assert.equal(frozen.status, 422, frozen.text);
    assert.match(frozen.body.detail, /falls in the freeze .*scheduler test freeze/);
    assert.equal((await t.control.query('SELECT count(*)::int AS n FROM runs')).rows[0].n >= 0, true);

    const at = new Date(long.getTime() + 10 * MIN);
    const id = await created('production', { schedule: { mode: 'at', at: at.toISOString() } });
    const run = await approve(id, 'production');
    assert.equal(run.status, 'scheduled');
    assert.equal(run.scheduledFor, at.toISOString());
  });

  test('the backup is in the estimate the scheduler fits: a dump this environment measured as slow makes the 60-minute window too short', async () => {
    await writeMigrations(productionDir, { '1000_slow-table': SLOW_TABLE });
    // One earlier backup of production: 1 MiB in an hour (a measured, very slow dump rate).
    const { rows: [earlier] } = await t.control.query(`INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals)
      VALUES ('production', 'succeeded', 'earlier run', 'alice', 'd', '{engineering,sre}') RETURNING id`);
    await t.control.query(`INSERT INTO backups (id, run_id, environment, method, location, size_bytes, sha256, created_at, verified_at)
      VALUES ('production-slow', $1, 'production', 'pg_dump', '/nowhere', 1, 'x', now() - interval '1 hour', now())`, [earlier.id]);
    await t.control.query(`INSERT INTO backup_timings (backup_id, environment, method, database_bytes, duration_ms) VALUES ('production-slow', 'production', 'pg_dump', 1048576, 3600000)`);
    try {
      const id = await created('production');
      const impact = (await api('get', `/v1/runs/${id}/preflight`, 'vic')).body.report.impact;
      assert.equal(impact.backup.calibration, 'history');
      assert.ok(impact.backup.estimatedMs > 60 * MIN, `backup estimated at ${impact.backup.estimatedMs} ms`);
      assert.equal(impact.totalEstimatedMs, impact.migrationsEstimatedMs + impact.backup.estimatedMs);
      assert.ok(impact.migrationsEstimatedMs < MIN, 'the migrations alone would fit the 60-minute window');
      const run = await approve(id, 'production');
      assert.equal(run.status, 'approved', 'no window holds backup plus migrations');
      assert.equal(run.scheduledFor, null);
      const unschedulable = (await events(id)).find((e) => e.type === 'schedule.unschedulable')!;
      assert.equal(unschedulable.details.estimatedMs, impact.totalEstimatedMs);
    } finally {
      await t.control.query(`DELETE FROM backup_timings WHERE backup_id = 'production-slow'`);
    }
  });

  test('an estimate no window can hold: stays approved, audited; applying it needs an operator\'s override request with a reason and a different sre\'s approval', async () => {
    await writeMigrations(productionDir, { '1000_slow-table': SLOW_TABLE });
    const id = await created('production');
    // As if preflight had estimated two hours (the windows are 1 and 60 minutes).
    await t.control.query(`UPDATE run_reports SET body = jsonb_set(body, '{impact,totalEstimatedMs}', '7200000') WHERE run_id = $1 AND kind = 'preflight'`, [id]);
    const run = await approve(id, 'production');
    assert.equal(run.status, 'approved');
    assert.equal(run.scheduledFor, null);
    const unschedulable = (await events(id)).find((e) => e.type === 'schedule.unschedulable')!;
    assert.match(String(unschedulable.details.reason), /no maintenance window in reach fits/);

    const plain = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production' });
    assert.equal(plain.status, 409, plain.text);
    assert.equal(plain.body.code, 'outside-window');
    assert.match(plain.body.detail, /no maintenance window open now .*overrideWindow/);
    assert.equal(plain.body.nextWindow.start, nextAtHour(H, new Date()).toISOString());
    const noReason = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production', overrideWindow: true });
    assert.equal(noReason.status, 422, noReason.text);
    assert.equal(noReason.body.errors[0].path, 'body/reason');
    assert.equal((await getRun(id)).status, 'approved', 'refusals change nothing');

    // The operator asks; nothing is applied until a different sre co-signs.
    const asked = await api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'production', overrideWindow: true, reason: 'hotfix for INC-7' });
    assert.equal(asked.status, 202, asked.text);
    assert.equal(asked.headers.location, `/v1/runs/${id}/overrides`);
    assert.equal(asked.body.status, 'approved');
    const self = await api('post', `/v1/runs/${id}/overrides/approvals`, 'olga', { decision: 'approve' });
    assert.equal(self.status, 403, 'an operator is not an sre');
    const ok = await api('post', `/v1/runs/${id}/overrides/approvals`, 'carol', { decision: 'approve', comment: 'INC-7 confirmed' });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.body.status, 'approved');
    await t.settle();
    assert.equal((await getRun(id)).status, 'succeeded', JSON.stringify((await getRun(id)).error));
    const evs = await events(id);
    const override = evs.find((e) => e.type === 'apply.window_overridden')!;
    assert.equal(override.actor, 'carol');
    assert.equal(override.details.requestedBy, 'olga');
    assert.equal(override.details.reason, 'hotfix for INC-7');
    const started = evs.find((e) => e.type === 'apply.started')!;
    assert.equal(started.details.overrideWindow, true);
    assert.equal(started.details.window, null);
    assert.equal(started.details.deadline, FREEZE.from.toISOString(), 'outside windows, lock retries still stop at the next freeze');
  });
});

describe('the tick', () => {
  test('no windows: a scheduled run is started by the scheduler, applied, its lease dropped', async () => {
    await writeMigrations(stagingDir, BASE);
    await applyMigrations(t.targets.staging.url, stagingDir, 2);
    await writeMigrations(stagingDir, { ...BASE, '2000_add-note': ADD_NOTE });
    const id = await created('staging');
    const run = await approve(id, 'staging');
    assert.equal(run.status, 'scheduled');
    assert.ok(Math.abs(Date.parse(run.scheduledFor) - Date.now()) < 60_000, 'due now');
    assert.deepEqual((await tick(new Date(Date.parse(run.scheduledFor) - 1000))).started, [], 'not due yet');
    const result = await tick(new Date());
    assert.deepEqual(result.started, [id]);
    await t.settle();
    const done = await getRun(id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const started = (await events(id)).filter((e) => e.type === 'apply.started');
    assert.equal(started.length, 1);
    assert.equal(started[0]!.actor, 'scheduler');
    assert.equal(started[0]!.from, 'scheduled');
    assert.equal(started[0]!.details.deadline, null);
    assert.match(String(started[0]!.details.instance), /:\d+:/);
    const lease = await t.control.query('SELECT lease_owner, lease_expires_at FROM runs WHERE id = $1', [id]);
    assert.deepEqual(lease.rows[0], { lease_owner: null, lease_expires_at: null });
    assert.deepEqual((await tick(new Date())).started, [], 'never started twice');
  });

  test('the API and the tick racing for one run: exactly one apply', async () => {
    await writeMigrations(stagingDir, BASE);
    await applyMigrations(t.targets.staging.url, stagingDir, 2);
    await writeMigrations(stagingDir, { ...BASE, '2000_add-note': ADD_NOTE });
    const id = await created('staging');
    await approve(id, 'staging');
    const [ticked, res] = await Promise.all([tick(new Date()), api('post', `/v1/runs/${id}/apply`, 'olga', { confirm: 'staging' })]);
    await t.settle();
    assert.equal(ticked.started.length + (res.status === 202 ? 1 : 0), 1, `tick ${JSON.stringify(ticked)}, api ${res.status} ${res.text}`);
    if (res.status !== 202) assert.equal(res.status, 409);
    assert.equal((await events(id)).filter((e) => e.type === 'apply.started').length, 1);
    assert.equal((await getRun(id)).status, 'succeeded');
    const ledger = await t.control.query('SELECT count(*)::int AS n FROM migration_ledger WHERE run_id = $1', [id]);
    assert.equal(ledger.rows[0].n, 1);
  });

  test('windows: not due before its window; rescheduled when the estimate no longer fits or the window closed; started in the next fitting window with the window end as deadline', async () => {
    await writeMigrations(productionDir, { '1000_slow-table': SLOW_TABLE });
    const id = await created('production');
    const run = await approve(id, 'production');
    const S = new Date(run.scheduledFor);
    assert.equal(S.toISOString(), nextAtHour(H1, new Date()).toISOString());
    const at = (ms: number) => new Date(S.getTime() + ms);

    assert.deepEqual(await tick(at(-MIN)), { started: [], rescheduled: [], unscheduled: [], interrupted: [], busy: [], rollbacks: [] });

    // 59 minutes in, one minute left: less than the estimate plus a minute of margin.
    assert.deepEqual((await tick(at(59 * MIN))).rescheduled, [id]);
    let now = await getRun(id);
    assert.equal(now.status, 'scheduled');
    assert.equal(now.scheduledFor, at(24 * HOUR).toISOString());
    let moved = (await events(id)).filter((e) => e.type === 'run.rescheduled');
    assert.equal(moved.length, 1);
    assert.match(String(moved[0]!.details.reason), /no longer fits before the window closes/);
    assert.equal(moved[0]!.details.from, S.toISOString());
    assert.equal(moved[0]!.details.to, at(24 * HOUR).toISOString());
    assert.equal(moved[0]!.actor, 'scheduler');
    assert.equal(moved[0]!.to, null, 'a reschedule is not a status change');

    // The scheduler was down through that window: two hours later it is closed.
    assert.deepEqual((await tick(at(26 * HOUR))).rescheduled, [id]);
    now = await getRun(id);
    assert.equal(now.scheduledFor, at(48 * HOUR).toISOString(), 'the 1-minute window in between does not fit either');
    moved = (await events(id)).filter((e) => e.type === 'run.rescheduled');
    assert.match(String(moved[1]!.details.reason), /no maintenance window is open/);

    const result = await tick(at(48 * HOUR + 5 * MIN));
    assert.deepEqual(result.started, [id]);
    await t.settle();
    now = await getRun(id);
    assert.equal(now.status, 'succeeded', JSON.stringify(now.error));
    const started = (await events(id)).find((e) => e.type === 'apply.started')!;
    assert.equal(started.actor, 'scheduler');
    assert.equal(started.details.deadline, at(49 * HOUR).toISOString(), 'lock retries stop when the window closes');
    assert.deepEqual(started.details.window, { start: at(48 * HOUR).toISOString(), end: at(49 * HOUR).toISOString() });
    assert.equal((await t.targets.production.query(`SELECT count(*)::int AS n FROM pgmigrations WHERE name = '1000_slow-table'`)).rows[0].n, 1);
  });

  test('a freeze that begins before a scheduled run is due moves it past the freeze', async () => {
    await writeMigrations(productionDir, { '1000_slow-table': SLOW_TABLE });
    const id = await created('production');
    await approve(id, 'production');
    // Pretend it was due inside the freeze (e.g. the freeze was added to the config later).
    const inFreeze = nextAtHour(H1, new Date(FREEZE.from.getTime() + HOUR));
    await t.control.query('UPDATE runs SET scheduled_for = $2 WHERE id = $1', [id, inFreeze]);
    assert.deepEqual((await tick(new Date(inFreeze.getTime() + 5 * MIN))).rescheduled, [id]);
    const run = await getRun(id);
    assert.ok(Date.parse(run.scheduledFor) >= FREEZE.to.getTime(), `${run.scheduledFor} is after the freeze`);
    const moved = (await events(id)).find((e) => e.type === 'run.rescheduled')!;
    assert.match(String(moved.details.reason), /frozen until .*scheduler test freeze/);
  });
});

describe('crash recovery without a crash: the sweep', () => {
  test('an in-flight run is left alone while its lease is valid or its apply lock is held; once both lapse it is interrupted with a reconciliation', async () => {
    await writeMigrations(stagingDir, BASE);
    await applyMigrations(t.targets.staging.url, stagingDir, 2);
    await writeMigrations(stagingDir, { ...BASE, '2000_add-note': ADD_NOTE, '3000_add-score': ADD_SCORE });
    const id = await created('staging');
    await approve(id, 'staging');
    // What a dead process leaves: the run applying, 2000 landed (but not ledgered), workers paused,
    // an INVALID index from a failed CONCURRENTLY build, and a statement still running.
    await t.control.query(`UPDATE runs SET status = 'applying', lease_owner = 'ghost:1:dead', lease_expires_at = now() + interval '1 hour' WHERE id = $1`, [id]);
    await applyMigrations(t.targets.staging.url, stagingDir, 1);
    await t.targets.staging.query(`UPDATE etl_control SET paused = true, reason = 'migration run ${id}'`);
    await t.targets.staging.query(`INSERT INTO accounts VALUES (51, 'u1@x')`);
    await assert.rejects(t.targets.staging.query('CREATE UNIQUE INDEX CONCURRENTLY accounts_email_uq ON accounts (email)'), /could not create unique index/);
    const orphan = new pg.Client({ connectionString: t.targets.staging.url, application_name: 'starforge-apply' });
    orphan.on('error', () => undefined);
    await orphan.connect();
    const sleeping = orphan.query('SELECT pg_sleep(60)').then(() => 'finished', () => 'terminated');

    assert.deepEqual((await tick(new Date())).interrupted, [], 'lease still valid');
    await t.control.query(`UPDATE runs SET lease_expires_at = now() - interval '1 second' WHERE id = $1`, [id]);
    const holder = new pg.Client({ connectionString: t.control.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(7318, hashtext($1))', [id]);
    assert.deepEqual((await tick(new Date())).interrupted, [], 'apply lock held: its owner is alive, only slow');
    assert.equal((await getRun(id)).status, 'applying');
    await holder.end();

    assert.deepEqual((await tick(new Date())).interrupted, [id]);
    assert.equal(await sleeping, 'terminated', 'the orphaned statement was stopped');
    await orphan.end().catch(() => undefined);
    const run = await getRun(id);
    assert.equal(run.status, 'interrupted');
    assert.equal(run.error.code, 'interrupted');
    assert.match(run.error.message, /landed: 2000_add-note/);
    const report = (await api('get', `/v1/runs/${id}/report`, 'vic')).body.apply.report;
    assert.equal(report.outcome, 'interrupted');
    const r = report.reconciliation;
    assert.equal(r.previousStatus, 'applying');
    assert.deepEqual(r.lease.owner, 'ghost:1:dead');
    assert.deepEqual(r.migrations, [
      { name: '2000_add-note', inTarget: true, inLedger: false },
      { name: '3000_add-score', inTarget: false, inLedger: false },
    ]);
    assert.deepEqual(r.landed, ['2000_add-note']);
    assert.deepEqual(r.notLanded, ['3000_add-score']);
    assert.deepEqual(r.ledgerMismatch, ['2000_add-note']);
    assert.deepEqual(r.ledgerRepaired, ['2000_add-note']);
    const ledger = await t.control.query('SELECT name, run_id FROM migration_ledger WHERE run_id = $1', [id]);
    assert.deepEqual(ledger.rows, [{ name: '2000_add-note', run_id: id }]);
    assert.deepEqual(r.invalidIndexes, [{ index: 'accounts_email_uq', table: 'accounts' }]);
    assert.equal(r.workers.etlControlPaused, true);
    assert.equal(r.orphanedSessions.length, 1);
    assert.equal(r.orphanedSessions[0].terminated, true);
    assert.match(r.orphanedSessions[0].query, /pg_sleep/);
    assert.ok(r.advice.some((a: string) => /INVALID index/.test(a)));
    const interrupted = (await events(id)).find((e) => e.type === 'run.interrupted')!;
    assert.equal(interrupted.from, 'applying');
    assert.deepEqual(interrupted.details.landed, ['2000_add-note']);
    const md = await api('get', `/v1/runs/${id}/report?format=md`, 'vic');
    assert.equal(md.status, 200);
    // Nothing was re-applied: 3000 never ran.
    assert.deepEqual((await t.targets.staging.query('SELECT name FROM pgmigrations ORDER BY id')).rows.map((x) => x.name), ['1000_etl-control', '1100_create-accounts', '2000_add-note']);
    assert.deepEqual((await tick(new Date())).interrupted, [], 'reconciled once');
  });
});
