// The run lifecycle through the API: create -> preflight -> approvals ->
// approved / rejected / cancelled, re-running preflight, preflight failures,
// the preflight report, and the 409s of illegal transitions.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import pg from 'pg';
import { startTestApp, type TestApp } from '../support/app.js';
import {
  api, assertCompleteTrail, assertNothingWritten, assertProblem, createAwaiting, eventsOf, forgetApplied, freeEnvironments,
  HEX64, ISO, markApplied, applyRepoMigrations, REPO_MIGRATIONS, repoMigrationSha, UUID,
} from './helpers.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({ label: 'lifecycle' });
});
afterEach(async () => {
  await freeEnvironments(t);
  await forgetApplied(t.targets.production);
  await forgetApplied(t.targets.staging);
});
after(() => t.close());

test('POST /v1/runs creates a run from the real pending set of the target', async () => {
  const res = await api(t).create('alice', { environment: 'production', description: 'initial schema', ticket: 'OPS-1' });
  assert.equal(res.status, 201, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const run = res.body;
  assert.match(run.id, UUID);
  assert.equal(res.headers.location, `/v1/runs/${run.id}`);
  assert.equal(run.environment, 'production');
  assert.ok(['created', 'preflight_running'].includes(run.status), run.status);
  assert.equal(run.description, 'initial schema');
  assert.equal(run.ticket, 'OPS-1');
  assert.equal(run.to, null);
  assert.equal(run.requestedBy, 'alice');
  assert.match(run.createdAt, ISO);
  assert.match(run.updatedAt, ISO);
  assert.deepEqual(run.schedule, { mode: 'window' });
  assert.equal(run.scheduledFor, null);
  assert.deepEqual(run.requiredApprovals, ['engineering', 'sre']);
  assert.deepEqual(run.approvals, []);
  assert.equal(run.backup, null);
  assert.equal(run.error, null);
  // Every file of database/migrations is pending on the empty target, in order, with the sha256 of its bytes.
  assert.deepEqual(run.migrations.map((m: { name: string }) => m.name), [...REPO_MIGRATIONS]);
  for (const m of run.migrations) assert.equal(m.sha256, await repoMigrationSha(m.name), m.name);
  assert.match(run.digest, HEX64);

  await t.settle();
  const settled = await api(t).get(run.id);
  assert.equal(settled.status, 200);
  assert.equal(settled.body.status, 'awaiting_approval');
  assert.equal(settled.body.digest, run.digest);
  assert.deepEqual(settled.body.migrations, run.migrations);
  assert.ok(Date.parse(settled.body.updatedAt) >= Date.parse(run.updatedAt));
});

test('only the migrations not yet applied on the target are pending', async () => {
  await applyRepoMigrations(t.targets.staging, 3);
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'rest' });
  assert.deepEqual(run.migrations.map((m) => m.name), REPO_MIGRATIONS.slice(3));
  assert.deepEqual(run.requiredApprovals, ['any']);
});

test('the preflight report covers rehearsal, lint, checks and impact, as JSON and Markdown', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'report check', ticket: 'OPS-7' });
  const res = await api(t).report(run.id);
  assert.equal(res.status, 200, res.text);
  assert.match(res.body.createdAt, ISO);
  const report = res.body.report;
  assert.equal(report.outcome, 'passed');
  assert.equal(report.scope, 'full');
  assert.equal(report.digest, run.digest);
  assert.deepEqual(report.migrations, run.migrations);
  assert.deepEqual(report.findings.filter((f: { severity: string }) => f.severity === 'error'), []);
  // The pgcrypto migration is flagged as needing privileges; the tests' rehearsal server is the targets' own.
  assert.deepEqual(report.findings.map((f: { rule: string }) => f.rule), ['create-extension', 'rehearsal-on-target-server']);
  const checks = Object.fromEntries(report.checks.map((c: { id: string; status: string }) => [c.id, c.status]));
  for (const id of ['connectivity', 'pending-set', 'rehearsal', 'rehearsal-smoke-etl', 'connections', 'long-transactions', 'applied-checksums', 'backup-tooling', 'backup-space', 'extension:pgcrypto']) {
    assert.equal(checks[id], 'pass', id);
  }
  assert.equal(report.rehearsal.steps.length, REPO_MIGRATIONS.length * 3, 'up, down and up again for each migration');
  assert.ok(report.rehearsal.steps.every((s: { ok: boolean }) => s.ok));
  assert.equal(report.impact.migrations.length, REPO_MIGRATIONS.length);
  assert.equal(typeof report.impact.totalEstimatedMs, 'number');
  assert.equal(checks['rehearsal-smoke-etl'], 'pass', 'the smoke ETL ran on the rehearsal copy');

  const md = await api(t).report(run.id, 'vic', 'md');
  assert.equal(md.status, 200);
  assert.match(String(md.headers['content-type']), /^text\/markdown/);
  assert.match(md.text, new RegExp(`^# Preflight report: production run ${run.id}`));
  assert.match(md.text, /Outcome: \*\*PASSED\*\*/);
  assert.ok(md.text.includes(run.digest), 'the Markdown names the digest');
  assert.ok(md.text.includes('(OPS-7)'));
  for (const section of ['## Findings', '## Checks', '## Migrations', '## Rehearsal']) assert.ok(md.text.includes(section), section);
  for (const name of REPO_MIGRATIONS) assert.ok(md.text.includes(name), name);

  const json = await api(t).report(run.id, 'vic', 'json');
  assert.deepEqual(json.body, res.body);
});

test('GET /v1/runs/:id/preflight is 404 while a run has no report', async () => {
  // A run row written directly (no preflight ever ran for it).
  const { rows } = await t.control.query(
    `INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals)
     VALUES ('staging', 'cancelled', 'no report', 'alice', $1, '{any}') RETURNING id`, ['0'.repeat(64)]);
  const res = await api(t).report(rows[0].id);
  assertProblem(res, 404, /no preflight report/);
});

test('GET /v1/runs/:id: malformed ids are 400, unknown ids 404', async () => {
  assertProblem(await api(t).get('not-a-uuid'), 400);
  assertProblem(await api(t).get('123'), 400);
  assertProblem(await api(t).get('00000000-0000-4000-8000-00000000000g'), 400);
  const missing = await api(t).get('00000000-0000-4000-8000-000000000000');
  assertProblem(missing, 404, /does not exist/);
  assertProblem(await api(t).events('00000000-0000-4000-8000-000000000000'), 404);
  assertProblem(await api(t).report('00000000-0000-4000-8000-000000000000'), 404);
});

test('production: created -> preflight -> awaiting_approval -> approved -> cancelled, every step audited', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'full path' });
  const eng = await api(t).decide(run.id, 'bob', 'engineering', 'approve', 'looks fine');
  assert.equal(eng.status, 201, eng.text);
  assert.equal(eng.body.status, 'awaiting_approval');
  const sre = await api(t).decide(run.id, 'carol', 'sre');
  assert.equal(sre.status, 201, sre.text);
  assert.equal(sre.body.status, 'approved', 'approved, and (apply mode confirm) not scheduled until an operator confirms');

  const cancelled = await api(t).cancel(run.id, 'alice', 'window moved');
  assert.equal(cancelled.status, 200, cancelled.text);
  assert.equal(cancelled.body.status, 'cancelled');

  const events = await eventsOf(t, run.id);
  assert.deepEqual(
    events.map((e) => [e.type, e.actor, e.from, e.to]),
    [
      ['run.created', 'alice', null, 'created'],
      ['preflight.started', 'system', 'created', 'preflight_running'],
      ['preflight.passed', 'system', 'preflight_running', 'awaiting_approval'],
      ['approval.approved', 'bob', null, null],
      ['approval.approved', 'carol', null, null],
      ['run.approved', 'carol', 'awaiting_approval', 'approved'],
      ['apply.awaiting_confirmation', 'scheduler', null, null],
      ['run.cancelled', 'alice', 'approved', 'cancelled'],
    ],
  );
  assert.deepEqual(events[3]!.details, { role: 'engineering', comment: 'looks fine', digest: run.digest });
  assert.deepEqual(events[5]!.details, { digest: run.digest, approvers: ['bob', 'carol'] });
  assert.equal((events[6]!.details as { mode: string }).mode, 'confirm');
  assert.deepEqual(events[7]!.details, { reason: 'window moved' });
  assert.equal((events[0]!.details as { digest: string }).digest, run.digest);
  assert.deepEqual((events[0]!.details as { migrations: string[] }).migrations, [...REPO_MIGRATIONS]);
  await assertCompleteTrail(t, cancelled.body);

  // The environment is free again.
  const next = await api(t).create('amy', { environment: 'production', description: 'after cancel' });
  assert.equal(next.status, 201, next.text);
});

test('a second active run in the same environment is 409 with activeRunId; other environments are independent', async () => {
  const first = await createAwaiting(t, 'alice', { environment: 'staging', description: 'first' });
  const second = await assertNothingWritten(t, () => api(t).create('amy', { environment: 'staging', description: 'second' }));
  assertProblem(second, 409, /already has an active run/);
  assert.equal(second.body.activeRunId, first.id);
  assert.ok(second.body.detail.includes(first.id));

  // An approved run still holds the environment.
  const approved = await api(t).decide(first.id, 'bob', 'engineering');
  assert.equal(approved.body.status, 'scheduled');
  const third = await assertNothingWritten(t, () => api(t).create('alice', { environment: 'staging', description: 'third' }));
  assertProblem(third, 409);
  assert.equal(third.body.activeRunId, first.id);

  const prod = await api(t).create('amy', { environment: 'production', description: 'other environment' });
  assert.equal(prod.status, 201, prod.text);
});

test('concurrent creates in one environment: exactly one run, the rest 409 naming it', async () => {
  const before = (await t.control.query('SELECT count(*)::int AS n FROM runs')).rows[0].n;
  const responses = await Promise.all(
    Array.from({ length: 12 }, (_, i) => api(t).create(i % 2 ? 'alice' : 'amy', { environment: 'staging', description: `race ${i}` })),
  );
  const created = responses.filter((r) => r.status === 201);
  assert.equal(created.length, 1, responses.map((r) => r.status).join(','));
  for (const r of responses.filter((r) => r.status !== 201)) {
    assertProblem(r, 409);
    assert.equal(r.body.activeRunId, created[0]!.body.id);
  }
  await t.settle();
  const after = (await t.control.query('SELECT count(*)::int AS n FROM runs')).rows[0].n;
  assert.equal(after, before + 1);
});

test('illegal transitions are 409 naming the current status, and write nothing', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'to cancel' });
  const cancelled = await api(t).cancel(run.id, 'alice');
  assert.equal(cancelled.status, 200, cancelled.text);
  assert.equal(cancelled.body.status, 'cancelled');

  const again = await assertNothingWritten(t, () => api(t).cancel(run.id, 'alice'));
  assertProblem(again, 409, /is cancelled/);
  assert.equal(again.body.currentStatus, 'cancelled');
  const asOperator = await assertNothingWritten(t, () => api(t).cancel(run.id, 'olga'));
  assertProblem(asOperator, 409, /is cancelled/);
  const preflight = await assertNothingWritten(t, () => api(t).preflight(run.id, 'alice'));
  assertProblem(preflight, 409, /is cancelled/);
  const approval = await assertNothingWritten(t, () => api(t).decide(run.id, 'bob', 'engineering'));
  assertProblem(approval, 409, /is cancelled/);
  assert.equal(approval.body.currentStatus, 'cancelled');

  const rejected = await createAwaiting(t, 'alice', { environment: 'staging', description: 'to reject' });
  const no = await api(t).decide(rejected.id, 'carol', 'sre', 'reject', 'not now');
  assert.equal(no.status, 201, no.text);
  assert.equal(no.body.status, 'rejected');
  assertProblem(await assertNothingWritten(t, () => api(t).cancel(rejected.id, 'alice')), 409, /is rejected/);
  assertProblem(await assertNothingWritten(t, () => api(t).preflight(rejected.id, 'alice')), 409, /is rejected/);
  assertProblem(await assertNothingWritten(t, () => api(t).decide(rejected.id, 'bob', 'engineering')), 409, /is rejected/);
  assert.equal((await api(t).get(rejected.id)).body.status, 'rejected');
  await assertCompleteTrail(t, { ...rejected, status: 'rejected' });
});

test('cancelling while preflight is running wins: the preflight keeps its report and changes nothing', async () => {
  // The target's pgmigrations is a view whose second read (the preflight's; the
  // first is the create's) waits for an advisory lock this test holds, so the
  // run is reliably caught in preflight_running.
  const target = t.targets.production;
  await target.query(`
    CREATE SEQUENCE gate_calls;
    CREATE FUNCTION gate() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
      IF nextval('gate_calls') > 1 THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
      RETURN true;
    END $$;
    CREATE VIEW pgmigrations AS
      SELECT NULL::int AS id, NULL::varchar AS name, NULL::timestamp AS run_on FROM (SELECT gate() AS g OFFSET 0) s WHERE NOT s.g;`);
  const holder = new pg.Client({ connectionString: target.url });
  await holder.connect();
  try {
    await holder.query('SELECT pg_advisory_lock(4242)');
    const res = await api(t).create('alice', { environment: 'production', description: 'cancel early' });
    assert.equal(res.status, 201, res.text);
    const id = res.body.id as string;
    for (let i = 0; (await api(t).get(id)).body.status !== 'preflight_running'; i++) {
      assert.ok(i < 200, 'the run never reached preflight_running');
      await new Promise((r) => setTimeout(r, 10));
    }
    const cancelled = await api(t).cancel(id, 'alice', 'changed my mind');
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.body.status, 'cancelled');
    await holder.query('SELECT pg_advisory_unlock(4242)');
    await t.settle();
    const run = (await api(t).get(id)).body;
    assert.equal(run.status, 'cancelled');
    assert.deepEqual(await assertCompleteTrail(t, run), ['created', 'preflight_running', 'cancelled']);
    const events = await eventsOf(t, id);
    assert.deepEqual(events[events.length - 1]!.details, { reason: 'changed my mind' });
    const report = await api(t).report(id);
    assert.equal(report.status, 200, 'the finished preflight still files its report');
    assert.equal(report.body.report.runId, id);
  } finally {
    await holder.end();
    await target.query('DROP VIEW IF EXISTS pgmigrations; DROP FUNCTION IF EXISTS gate(); DROP SEQUENCE IF EXISTS gate_calls;');
  }
});

test('re-running preflight from awaiting_approval keeps the run and writes a new report', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'staging', description: 'rerun' });
  const res = await api(t).preflight(run.id, 'alice');
  assert.equal(res.status, 202, res.text);
  assert.equal(res.body.id, run.id);
  assert.ok(['preflight_running', 'awaiting_approval'].includes(res.body.status), res.body.status);
  await t.settle();
  const after = (await api(t).get(run.id)).body;
  assert.equal(after.status, 'awaiting_approval');
  assert.equal(after.digest, run.digest);
  const reports = await t.control.query('SELECT count(*)::int AS n FROM run_reports WHERE run_id = $1', [run.id]);
  assert.equal(reports.rows[0].n, 2);
  const path = await assertCompleteTrail(t, after);
  assert.deepEqual(path, ['created', 'preflight_running', 'awaiting_approval', 'preflight_running', 'awaiting_approval']);
  const started = (await eventsOf(t, run.id)).filter((e) => e.type === 'preflight.started');
  assert.deepEqual(started.map((e) => e.actor), ['system', 'alice']);
});

test('re-running preflight on an approved run with unchanged migrations leaves it approved', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'rerun approved' });
  assert.equal((await api(t).decide(run.id, 'ben', 'engineering')).status, 201);
  assert.equal((await api(t).decide(run.id, 'cora', 'sre')).body.status, 'approved');

  const res = await api(t).preflight(run.id, 'olga');
  assert.equal(res.status, 202, res.text);
  await t.settle();
  const after = (await api(t).get(run.id)).body;
  // Both approvals were for this very digest and still count: the run must not
  // be stuck in awaiting_approval with nobody left who may approve it.
  assert.equal(after.digest, run.digest);
  assert.ok(after.approvals.every((a: { current: boolean }) => a.current));
  // Approved again, and (apply mode confirm) waiting for a fresh confirmation.
  assert.equal(after.status, 'approved');
  const path = await assertCompleteTrail(t, after);
  assert.deepEqual(path.slice(-4), ['approved', 'preflight_running', 'awaiting_approval', 'approved']);
  assert.equal((await eventsOf(t, run.id)).filter((e) => e.type === 'apply.awaiting_confirmation').length, 2);
  // And it can still be cancelled (its environment is not stuck either).
  assert.equal((await api(t).cancel(run.id, 'alice')).body.status, 'cancelled');
});

test('preflight fails when everything was applied meanwhile; the failed run frees the environment', async () => {
  const run = await createAwaiting(t, 'alice', { environment: 'production', description: 'will fail' });
  await markApplied(t.targets.production, REPO_MIGRATIONS);
  assert.equal((await api(t).preflight(run.id, 'alice')).status, 202);
  await t.settle();
  const failed = (await api(t).get(run.id)).body;
  assert.equal(failed.status, 'preflight_failed');
  assert.equal(failed.error.code, 'nothing-to-apply');
  assert.equal(failed.digest, run.digest, 'a failed preflight keeps the digest the run carried');
  const report = (await api(t).report(run.id)).body.report;
  assert.equal(report.outcome, 'failed');
  assert.deepEqual(report.findings.map((f: { rule: string }) => f.rule), ['nothing-to-apply']);
  assert.equal(report.checks.find((c: { id: string }) => c.id === 'pending-set').status, 'fail');
  const md = await api(t).report(run.id, 'vic', 'md');
  assert.match(md.text, /Outcome: \*\*FAILED\*\*/);
  assert.match(md.text, /nothing-to-apply/);

  // preflight_failed is not cancellable and takes no decisions...
  assertProblem(await assertNothingWritten(t, () => api(t).cancel(run.id, 'alice')), 409, /preflight_failed/);
  assertProblem(await assertNothingWritten(t, () => api(t).decide(run.id, 'bob', 'engineering')), 409, /preflight_failed/);
  // ...and does not hold the environment.
  const envs = (await api(t).environments()).body as Array<{ name: string; activeRun: unknown }>;
  assert.equal(envs.find((e) => e.name === 'production')!.activeRun, null);
  const nothing = await assertNothingWritten(t, () => api(t).create('amy', { environment: 'production', description: 'nothing left' }));
  assertProblem(nothing, 422, /Nothing to apply/);

  // Once the target has pending migrations again, preflight can be re-run and passes.
  await forgetApplied(t.targets.production);
  assert.equal((await api(t).preflight(run.id, 'alice')).status, 202);
  await t.settle();
  const passed = (await api(t).get(run.id)).body;
  assert.equal(passed.status, 'awaiting_approval');
  assert.equal(passed.error, null, 'a passing preflight clears the error');
  const path = await assertCompleteTrail(t, passed);
  assert.deepEqual(path, [
    'created', 'preflight_running', 'awaiting_approval', 'preflight_running', 'preflight_failed', 'preflight_running', 'awaiting_approval',
  ]);
  const types = (await eventsOf(t, run.id)).map((e) => e.type);
  assert.deepEqual(types, ['run.created', 'preflight.started', 'preflight.passed', 'preflight.started', 'preflight.failed', 'preflight.started', 'preflight.passed']);
});

test('re-running preflight on a failed run while another run holds the environment is 409, not 500', async () => {
  const failedRun = await createAwaiting(t, 'alice', { environment: 'staging', description: 'fails' });
  await markApplied(t.targets.staging, REPO_MIGRATIONS);
  await api(t).preflight(failedRun.id, 'alice');
  await t.settle();
  assert.equal((await api(t).get(failedRun.id)).body.status, 'preflight_failed');
  await forgetApplied(t.targets.staging);
  const holder = await createAwaiting(t, 'amy', { environment: 'staging', description: 'holds staging' });

  const res = await assertNothingWritten(t, () => api(t).preflight(failedRun.id, 'alice'));
  assertProblem(res, 409, /active run/);
  assert.equal(res.body.activeRunId, holder.id);
  assert.equal((await api(t).get(failedRun.id)).body.status, 'preflight_failed');
  assert.equal((await api(t).get(holder.id)).body.status, 'awaiting_approval');
});

test('schedules: now, window and a future time are stored; scheduledFor is the requested time', async () => {
  const at = new Date(Date.now() + 3 * 24 * 3600_000).toISOString();
  const timed = await createAwaiting(t, 'alice', { environment: 'staging', description: 'timed', schedule: { mode: 'at', at } });
  assert.deepEqual(timed.schedule, { mode: 'at', at });
  assert.equal(timed.scheduledFor, at);
  await api(t).cancel(timed.id, 'alice');
  const now = await createAwaiting(t, 'alice', { environment: 'staging', description: 'now', schedule: { mode: 'now' } });
  assert.deepEqual(now.schedule, { mode: 'now' });
  assert.equal(now.scheduledFor, null);
});

test('preflight.idle() (settle) waits for the preflight every new run starts', async () => {
  // Regression: idle() only knew preflights already launched, not the one a
  // just-created run was still requesting, so settle() returned too early.
  for (let i = 0; i < 8; i++) {
    const res = await api(t).create('alice', { environment: 'staging', description: `settle ${i}` });
    assert.equal(res.status, 201, res.text);
    await t.settle();
    const run = (await api(t).get(res.body.id)).body;
    assert.equal(run.status, 'awaiting_approval', `run ${i} was ${run.status} after settle()`);
    assert.equal((await api(t).cancel(run.id, 'alice')).status, 200);
  }
});
