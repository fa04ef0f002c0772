// The backfill API: roles, bad input (never a 5xx, never a change), the job
// state machine (pause / resume / cancel) with its audit trail on the target
// and in the control database, pausing a job mid-run, and the preflight lint
// pointing at the pattern.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { lintMigration } from '../../services/preflight/sql-analysis/index.js';
import { bearer, startTestApp, type Subject, type TestApp } from '../support/app.js';
import { configSource, createItems, definitionsDir, itemsDefinition, until, updateHistogram, type DefinitionsDir } from './helpers.js';

let t: TestApp;
let defs: DefinitionsDir;

before(async () => {
  defs = await definitionsDir();
  t = await startTestApp({ label: 'bf_api', migrationConfigSource: configSource(defs.dir) });
  await createItems(t.targets.staging, 3000);
  await t.targets.staging.query('CREATE TABLE unkeyed (k int, power int)');
  // Indexed, but keyset batches could skip the NULL key or grow without bound on a repeated one.
  await t.targets.staging.query('CREATE TABLE nullable_key (k int, power int); CREATE UNIQUE INDEX ON nullable_key (k)');
  await t.targets.staging.query('CREATE TABLE repeated_key (k int NOT NULL, power int); CREATE INDEX ON repeated_key (k)');
  await defs.write('nullable-key', { table: 'nullable_key', keyColumn: 'k', batch: 'UPDATE nullable_key SET power = 1 WHERE k BETWEEN $1 AND $2' });
  await defs.write('repeated-key', { table: 'repeated_key', keyColumn: 'k', batch: 'UPDATE repeated_key SET power = 1 WHERE k BETWEEN $1 AND $2' });
  await defs.write('items-power', itemsDefinition());
  await defs.write('items-power-2', itemsDefinition());
  await defs.write('unkeyed', { table: 'unkeyed', keyColumn: 'k', batch: 'UPDATE unkeyed SET power = 1 WHERE k BETWEEN $1 AND $2' });
  await defs.write('missing-table', { table: 'nowhere', keyColumn: 'id', batch: 'UPDATE nowhere SET x = 1 WHERE id BETWEEN $1 AND $2' });
  await defs.write('missing-column', { table: 'items', keyColumn: 'id', batch: 'UPDATE items SET nope = 1 WHERE id BETWEEN $1 AND $2' });
  await defs.write('bad-key', { table: 'items', keyColumn: 'nope', batch: 'UPDATE items SET power = 1 WHERE id BETWEEN $1 AND $2' });
  // Invalid definitions: each refused with a message naming the problem.
  await defs.write('unknown-field', { ...itemsDefinition(), owner: 'me' });
  await defs.write('not-dml', { ...itemsDefinition(), batch: 'DROP TABLE items' });
  await defs.write('two-statements', { ...itemsDefinition(), batch: 'UPDATE items SET power = 1 WHERE id BETWEEN $1 AND $2; DELETE FROM items' });
  await defs.write('one-param', { ...itemsDefinition(), batch: 'UPDATE items SET power = 1 WHERE id > $1' });
  await defs.write('other-table', { ...itemsDefinition(), batch: 'UPDATE unkeyed SET power = 1 WHERE k BETWEEN $1 AND $2' });
  await defs.write('syntax', { ...itemsDefinition(), batch: 'UPDATE items SET WHERE id BETWEEN $1 AND $2' });
  await defs.write('bad-remaining', { ...itemsDefinition(), remaining: 'DELETE FROM items' });
  await defs.write('bad-table-name', { ...itemsDefinition(), table: 'Items; DROP' });
});

after(async () => {
  await t?.close();
  await defs?.remove();
});

const post = (path: string, who: Subject | null, body?: object) => {
  const req = t.http().post(path);
  if (who) req.set('authorization', bearer(who));
  return body === undefined ? req : req.send(body);
};
const get = (path: string, who: Subject = 'vic') => t.http().get(path).set('authorization', bearer(who));

async function targetCounts(): Promise<{ jobs: number; events: number }> {
  const exists = (await t.targets.staging.query(`SELECT to_regclass('sfm_backfill.backfill_jobs') IS NOT NULL AS e`)).rows[0].e;
  if (!exists) return { jobs: 0, events: 0 };
  const { rows } = await t.targets.staging.query('SELECT (SELECT count(*) FROM sfm_backfill.backfill_jobs)::int AS jobs, (SELECT count(*) FROM sfm_backfill.backfill_events)::int AS events');
  return rows[0];
}

describe('bad input and roles', () => {
  test('every refusal is problem+json with the right status, and nothing is created (not even the schema)', async () => {
    const cases: Array<[string, Subject | null, object | string, number, RegExp?]> = [
      ['unauthenticated', null, { environment: 'staging', name: 'items-power' }, 401],
      ['viewer', 'vic', { environment: 'staging', name: 'items-power' }, 403, /operator/],
      ['requester', 'alice', { environment: 'staging', name: 'items-power' }, 403],
      ['engineering+sre', 'eve', { environment: 'staging', name: 'items-power' }, 403],
      ['unknown backfill', 'olga', { environment: 'staging', name: 'no-such-backfill' }, 422, /no backfill named "no-such-backfill"/],
      ['path traversal name', 'olga', { environment: 'staging', name: '../etc/passwd' }, 400],
      ['unknown environment', 'olga', { environment: 'qa', name: 'items-power' }, 404, /Unknown environment "qa"/],
      ['batchSize 0', 'olga', { environment: 'staging', name: 'items-power', batchSize: 0 }, 400, /batchSize/],
      ['batchSize too big', 'olga', { environment: 'staging', name: 'items-power', batchSize: 100_001 }, 400, /batchSize/],
      ['batchSize fraction', 'olga', { environment: 'staging', name: 'items-power', batchSize: 1.5 }, 400],
      ['batchSize string', 'olga', { environment: 'staging', name: 'items-power', batchSize: '10' }, 400],
      ['maxRowsPerSecond 0', 'olga', { environment: 'staging', name: 'items-power', maxRowsPerSecond: 0 }, 400],
      ['windowOnly string', 'olga', { environment: 'staging', name: 'items-power', windowOnly: 'yes' }, 400],
      ['unknown field', 'olga', { environment: 'staging', name: 'items-power', sql: 'DROP TABLE items' }, 400],
      ['missing name', 'olga', { environment: 'staging' }, 400],
      ['failuresOf not a uuid', 'olga', { environment: 'staging', name: 'items-power', failuresOf: 'x' }, 400],
      ['failuresOf unknown job', 'olga', { environment: 'staging', name: 'items-power', failuresOf: '00000000-0000-4000-8000-000000000000' }, 422, /no backfill job/],
      ['table missing', 'olga', { environment: 'staging', name: 'missing-table' }, 422, /no table nowhere/],
      ['key column missing', 'olga', { environment: 'staging', name: 'bad-key' }, 422, /no column nope/],
      ['key not indexed', 'olga', { environment: 'staging', name: 'unkeyed' }, 422, /leads no valid, non-partial index/],
      ['key nullable', 'olga', { environment: 'staging', name: 'nullable-key' }, 422, /nullable_key\.k on staging is nullable/],
      ['key not unique', 'olga', { environment: 'staging', name: 'repeated-key' }, 422, /repeated_key\.k on staging is not unique on its own/],
      ['statement does not fit', 'olga', { environment: 'staging', name: 'missing-column' }, 422, /column "nope" of relation "items" does not exist \(SQLSTATE 42703\)/],
      ['unknown definition field', 'olga', { environment: 'staging', name: 'unknown-field' }, 422, /"owner" is not a known field/],
      ['not DML', 'olga', { environment: 'staging', name: 'not-dml' }, 422, /UPDATE, DELETE or INSERT statement, not DropStmt/],
      ['two statements', 'olga', { environment: 'staging', name: 'two-statements' }, 422, /exactly one statement \(found 2\)/],
      ['one parameter', 'olga', { environment: 'staging', name: 'one-param' }, 422, /exactly the parameters \$1 and \$2/],
      ['another table', 'olga', { environment: 'staging', name: 'other-table' }, 422, /changes unkeyed, not the definition's table items/],
      ['syntax error', 'olga', { environment: 'staging', name: 'syntax' }, 422, /not valid SQL/],
      ['remaining not a SELECT', 'olga', { environment: 'staging', name: 'bad-remaining' }, 422, /"remaining" must be a SELECT/],
      ['bad table name', 'olga', { environment: 'staging', name: 'bad-table-name' }, 422, /"table" must be a lower-case table name/],
    ];
    for (const [label, who, body, status, detail] of cases) {
      const res = await post('/v1/backfills', who, body as object);
      assert.equal(res.status, status, `${label}: ${JSON.stringify(res.body)}`);
      assert.match(res.headers['content-type'] ?? '', /application\/problem\+json/, label);
      if (detail) assert.match(res.body.detail, detail, label);
    }
    const raw = await t.http().post('/v1/backfills').set('authorization', bearer('olga')).set('content-type', 'application/json').send('{"environment":');
    assert.equal(raw.status, 400);

    for (const [path, status] of [
      ['/v1/backfills/not-a-uuid', 400], ['/v1/backfills/00000000-0000-4000-8000-000000000000', 404],
      ['/v1/backfills?environment=qa', 404], ['/v1/backfills?status=nope', 400], ['/v1/backfills?limit=0', 400],
      ['/v1/backfills/00000000-0000-4000-8000-000000000000/failures', 404], ['/v1/backfills/00000000-0000-4000-8000-000000000000/events', 404],
      ['/v1/backfills/definitions?environment=qa', 404],
    ] as const) {
      const res = await get(path);
      assert.equal(res.status, status, `${path}: ${JSON.stringify(res.body)}`);
    }
    for (const action of ['pause', 'resume', 'cancel', 'retry-failures']) {
      assert.equal((await post(`/v1/backfills/00000000-0000-4000-8000-000000000000/${action}`, 'olga', {})).status, 404, action);
      assert.equal((await post(`/v1/backfills/00000000-0000-4000-8000-000000000000/${action}`, 'vic', {})).status, 403, action);
      assert.equal((await post(`/v1/backfills/nope/${action}`, 'olga', {})).status, 400, action);
    }
    assert.deepEqual(await targetCounts(), { jobs: 0, events: 0 });
    const exists = await t.targets.staging.query(`SELECT to_regnamespace('sfm_backfill') IS NOT NULL AS e`);
    assert.equal(exists.rows[0].e, false, 'refused requests did not even create the schema');
    const events = await t.control.query(`SELECT count(*)::int AS n FROM run_events WHERE type LIKE 'backfill.%'`);
    assert.equal(events.rows[0].n, 0);
    // No list before any job: an empty list, not an error.
    assert.deepEqual((await get('/v1/backfills?environment=staging')).body, { items: [] });
  });

  test('definitions are listed per environment, invalid ones with the reason', async () => {
    const res = await get('/v1/backfills/definitions?environment=staging');
    assert.equal(res.status, 200);
    const byName = Object.fromEntries(res.body.items.map((d: { name: string }) => [d.name, d]));
    assert.equal(byName['items-power'].valid, true);
    assert.equal(byName['items-power'].table, 'items');
    assert.match(byName['items-power'].sha256, /^[0-9a-f]{64}$/);
    assert.equal(byName['not-dml'].valid, false);
    assert.match(byName['not-dml'].error, /not DropStmt/);
  });
});

describe('the job state machine', () => {
  test('pause, resume and cancel move a job through its statuses, refuse illegal moves with 409, and audit each change on both sides', async () => {
    const created = await post('/v1/backfills', 'olga', { environment: 'staging', name: 'items-power', batchSize: 100, maxRowsPerSecond: 500, reason: 'ticket OPS-1' });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    assert.equal(created.headers.location, `/v1/backfills/${created.body.id}`);
    const id = created.body.id as string;
    assert.equal(created.body.status, 'pending');
    assert.equal(created.body.environment, 'staging');
    assert.equal(created.body.table, 'items');
    assert.equal(created.body.batchSize, 100);
    assert.equal(created.body.maxRowsPerSecond, 500);
    assert.equal(created.body.windowOnly, false);
    assert.equal(created.body.createdBy, 'olga');
    assert.equal(created.body.rowsDone, 0);

    const dup = await post('/v1/backfills', 'root', { environment: 'staging', name: 'items-power' });
    assert.equal(dup.status, 409);
    assert.match(dup.body.detail, new RegExp(`already has a job with work left.*${id}`));
    // Another backfill of the same table is a different name: allowed.
    const other = await post('/v1/backfills', 'olga', { environment: 'staging', name: 'items-power-2' });
    assert.equal(other.status, 202);

    const step = async (action: string, who: Subject, status: number, expect?: string) => {
      const res = await post(`/v1/backfills/${id}/${action}`, who, { reason: `${action} please` });
      assert.equal(res.status, status, `${action}: ${JSON.stringify(res.body)}`);
      if (expect) assert.equal(res.body.status, expect, action);
      return res;
    };
    await step('pause', 'vic', 403);
    await step('pause', 'olga', 200, 'paused');
    const again = await step('pause', 'olga', 409);
    assert.match(again.body.detail, /is paused; only a job that is pending or running can be paused/);
    await step('resume', 'root', 200, 'pending');
    await step('resume', 'olga', 409);
    await step('cancel', 'olga', 200, 'cancelled');
    await step('cancel', 'olga', 409);
    await step('resume', 'olga', 409);
    await step('pause', 'olga', 409);
    const retry = await post(`/v1/backfills/${id}/retry-failures`, 'olga', {});
    assert.equal(retry.status, 409, 'nothing failed');
    // A cancelled job no longer blocks a new one.
    const restarted = await post('/v1/backfills', 'olga', { environment: 'staging', name: 'items-power' });
    assert.equal(restarted.status, 202);
    await post(`/v1/backfills/${restarted.body.id}/cancel`, 'olga', {});
    await post(`/v1/backfills/${other.body.id}/cancel`, 'olga');

    const job = (await get(`/v1/backfills/${id}`)).body;
    assert.equal(job.status, 'cancelled');
    assert.ok(job.finishedAt);
    const events = (await get(`/v1/backfills/${id}/events`)).body as Array<{ type: string; actor: string; from: string | null; to: string; details: { reason?: string } }>;
    assert.deepEqual(events.map((e) => [e.type, e.actor, e.from, e.to, e.details.reason]), [
      ['backfill.pending', 'olga', null, 'pending', 'ticket OPS-1'],
      ['backfill.paused', 'olga', 'pending', 'paused', 'pause please'],
      ['backfill.pending', 'root', 'paused', 'pending', 'resume please'],
      ['backfill.cancelled', 'olga', 'pending', 'cancelled', 'cancel please'],
    ]);
    const control = await t.control.query(`SELECT type, actor, details FROM run_events WHERE run_id IS NULL AND details->>'jobId' = $1 ORDER BY created_at, id`, [id]);
    assert.deepEqual(control.rows.map((e) => [e.type, e.actor, e.details.from, e.details.to, e.details.reason]), events.map((e) => [e.type, e.actor, e.from, e.to, e.details.reason]));
    // The mirrored events carry no run status columns: they never count as run transitions.
    const cols = await t.control.query(`SELECT count(*)::int AS n FROM run_events WHERE type LIKE 'backfill.%' AND (from_status IS NOT NULL OR to_status IS NOT NULL)`);
    assert.equal(cols.rows[0].n, 0);

    const listed = (await get('/v1/backfills?environment=staging')).body.items.map((j: { id: string }) => j.id);
    assert.deepEqual(listed, [restarted.body.id, other.body.id, id]);
    assert.deepEqual((await get('/v1/backfills?status=cancelled&limit=1')).body.items.map((j: { id: string }) => j.id), [restarted.body.id]);
    assert.deepEqual((await get('/v1/backfills')).body.items.length, 3, 'every environment');
    assert.deepEqual(await updateHistogram(t.targets.staging), { 0: 3000 }, 'no executor ran: nothing changed');
  });

  test('pausing a running job stops it between batches; resuming continues from the checkpoint, every row once', { timeout: 60_000 }, async () => {
    const db = t.targets.staging;
    await db.query('UPDATE items SET power = NULL');
    await db.query('ALTER TABLE items DISABLE TRIGGER items_count_updates; UPDATE items SET updates = 0; ALTER TABLE items ENABLE TRIGGER items_count_updates');
    t.app.services.backfillExecutor.start();
    try {
      const created = await post('/v1/backfills', 'olga', { environment: 'staging', name: 'items-power', batchSize: 100, maxRowsPerSecond: 1000 });
      const id = created.body.id as string;
      await until('some batches', async () => ((await get(`/v1/backfills/${id}`)).body.rowsDone >= 500 ? true : undefined));
      const paused = await post(`/v1/backfills/${id}/pause`, 'olga', { reason: 'peak traffic' });
      assert.equal(paused.status, 200);
      assert.equal(paused.body.status, 'paused');
      assert.equal(paused.body.lease, null);
      const atPause = (await db.query('SELECT count(*)::int AS n FROM items WHERE updates > 0')).rows[0].n;
      assert.equal(paused.body.rowsDone, atPause, 'the checkpoint is exactly what committed');
      assert.equal(paused.body.lastKey, String(atPause));
      await new Promise((r) => setTimeout(r, 1200));
      assert.equal((await db.query('SELECT count(*)::int AS n FROM items WHERE updates > 0')).rows[0].n, atPause, 'no batch after the pause returned');
      assert.equal((await get(`/v1/backfills/${id}`)).body.status, 'paused');

      const resumed = await post(`/v1/backfills/${id}/resume`, 'olga');
      assert.equal(resumed.body.status, 'running');
      const done = await until('the job to finish', async () => {
        const j = (await get(`/v1/backfills/${id}`)).body;
        return j.status === 'succeeded' ? j : undefined;
      });
      assert.equal(done.rowsDone, 3000);
      assert.deepEqual(await updateHistogram(db), { 1: 3000 });
      const types = (await get(`/v1/backfills/${id}/events`)).body.map((e: { type: string; actor: string }) => `${e.type}:${e.actor}`);
      assert.deepEqual(types, ['backfill.pending:olga', 'backfill.running:backfills', 'backfill.paused:olga', 'backfill.running:olga', 'backfill.succeeded:backfills']);
    } finally {
      await t.app.services.backfillExecutor.stop();
    }
  });
});

test('the preflight lint points adding-required-field and adding-not-nullable-field to backfill jobs', async () => {
  const lint = (sql: string) => lintMigration({ migration: '1700000000800_x', statements: [sql], transactional: true, existingTables: new Set(['public.users']), source: '' });
  const required = (await lint('ALTER TABLE users ADD COLUMN power integer NOT NULL')).find((f) => f.rule === 'adding-required-field');
  assert.match(required!.message, /nullable or with a default, backfill, then enforce/);
  assert.match(required!.message, /backfill job .*database\/backfills\/.*POST \/v1\/backfills/);
  assert.match(required!.message, /CHECK \(power IS NOT NULL\) NOT VALID, VALIDATE CONSTRAINT, and SET NOT NULL/);
  const notNull = (await lint('ALTER TABLE users ALTER COLUMN email SET NOT NULL')).find((f) => f.rule === 'adding-not-nullable-field');
  assert.match(notNull!.message, /CHECK \(email IS NOT NULL\) NOT VALID.*VALIDATE.*SET NOT NULL/);
  assert.match(notNull!.message, /backfill job .*POST \/v1\/backfills/);
});

