// Shared helpers for the runs API tests (test/runs/*.test.ts). Everything goes
// through the HTTP API or plain SQL on the real databases: no mocks.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runner } from 'node-pg-migrate';
import type { Response } from 'supertest';
import { PROJECT_ROOT } from '../../database/paths.js';
import { bearer, type Subject, type TestApp } from '../support/app.js';
import type { TestDatabase } from '../support/db.js';

/** The repo's target migrations, in the order node-pg-migrate runs them. */
export const REPO_MIGRATIONS = [
  '1700000000000_enable-pgcrypto',
  '1700000000100_create-hero-snapshots',
  '1700000000200_hero-snapshots-raw-gin',
  '1700000000300_create-user-profile-summary',
  '1700000000400_create-user-troops',
  '1700000000500_create-etl-errors',
  '1700000000600_create-etl-control',
  '1700000000700_create-backfill-jobs',
] as const;

export const HEX64 = /^[0-9a-f]{64}$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** sha256 of a file in the repo's database/migrations directory. */
export async function repoMigrationSha(name: string): Promise<string> {
  return sha256(await readFile(join(PROJECT_ROOT, 'database/migrations', `${name}.js`)));
}

export interface Counts {
  runs: number;
  run_events: number;
  run_approvals: number;
  idempotency_keys: number;
  run_reports: number;
}

/** Row counts of the control tables every state change writes to. */
export async function counts(t: TestApp): Promise<Counts> {
  const { rows } = await t.control.query(`
    SELECT (SELECT count(*) FROM runs)::int AS runs,
           (SELECT count(*) FROM run_events)::int AS run_events,
           (SELECT count(*) FROM run_approvals)::int AS run_approvals,
           (SELECT count(*) FROM idempotency_keys)::int AS idempotency_keys,
           (SELECT count(*) FROM run_reports)::int AS run_reports`);
  return rows[0] as Counts;
}

/** Runs `fn` (which must be refused) and asserts the control database did not change. */
export async function assertNothingWritten<T>(t: TestApp, fn: () => Promise<T>): Promise<T> {
  await t.settle();
  const before = await counts(t);
  const result = await fn();
  await t.settle();
  assert.deepEqual(await counts(t), before, 'a refused request must not write to the control database');
  return result;
}

/** An RFC 9457 problem response with the given status. */
export function assertProblem(res: Response, status: number, detail?: RegExp): void {
  assert.notEqual(res.status, 500, `unexpected 500: ${res.text}`);
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `content-type of ${res.status}`);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  assert.equal(body.status, status);
  assert.equal(typeof body.type, 'string');
  assert.match(body.type as string, /^https?:\/\//);
  assert.equal(typeof body.title, 'string');
  assert.ok((body.title as string).length > 0);
  assert.equal(typeof body.detail, 'string');
  assert.ok((body.detail as string).length > 0);
  if (detail) assert.match(body.detail as string, detail);
  if (body.errors !== undefined) {
    assert.ok(Array.isArray(body.errors));
    for (const e of body.errors as Array<Record<string, unknown>>) {
      assert.equal(typeof e.path, 'string');
      assert.equal(typeof e.message, 'string');
    }
  }
}

/** A 400 validation problem naming `path` in its errors. */
export function assertValidationProblem(res: Response, path: string): void {
  assertProblem(res, 400);
  const errors = res.body.errors as Array<{ path: string; message: string }> | undefined;
  assert.ok(Array.isArray(errors) && errors.length > 0, `validation problem without errors: ${res.text}`);
  assert.ok(errors.some((e) => e.path === path), `expected an error at ${path}, got ${JSON.stringify(errors)}`);
}

export interface RunBody {
  environment: string;
  description: string;
  ticket?: string;
  to?: string;
  schedule?: { mode: 'window' | 'now' | 'at'; at?: string };
}

/** Thin wrappers around the runs API. */
export function api(t: TestApp) {
  return {
    create: (who: Subject, body: unknown, idempotencyKey?: string) => {
      const req = t.http().post('/v1/runs').set('authorization', bearer(who));
      if (idempotencyKey !== undefined) req.set('idempotency-key', idempotencyKey);
      return req.send(body as object);
    },
    get: (id: string, who: Subject = 'vic') => t.http().get(`/v1/runs/${id}`).set('authorization', bearer(who)),
    list: (query: Record<string, string | number> = {}, who: Subject = 'vic') =>
      t.http().get('/v1/runs').query(query).set('authorization', bearer(who)),
    decide: (id: string, who: Subject, role: string, decision = 'approve', comment?: string) =>
      t.http().post(`/v1/runs/${id}/approvals`).set('authorization', bearer(who))
        .send(comment === undefined ? { role, decision } : { role, decision, comment }),
    cancel: (id: string, who: Subject, reason?: string) => {
      const req = t.http().post(`/v1/runs/${id}/cancel`).set('authorization', bearer(who));
      return reason === undefined ? req : req.send({ reason });
    },
    preflight: (id: string, who: Subject) => t.http().post(`/v1/runs/${id}/preflight`).set('authorization', bearer(who)),
    report: (id: string, who: Subject = 'vic', format?: 'md' | 'json') => {
      const req = t.http().get(`/v1/runs/${id}/preflight`).set('authorization', bearer(who));
      return format ? req.query({ format }) : req;
    },
    events: (id: string, who: Subject = 'vic') => t.http().get(`/v1/runs/${id}/events`).set('authorization', bearer(who)),
    environments: (who: Subject = 'vic') => t.http().get('/v1/environments').set('authorization', bearer(who)),
  };
}

/** Creates a run, waits for its preflight and returns the run as it is then. */
export async function createSettled(t: TestApp, who: Subject, body: RunBody, idempotencyKey?: string): Promise<ApiRun> {
  const created = await api(t).create(who, body, idempotencyKey);
  assert.equal(created.status, 201, created.text);
  await t.settle();
  const got = await api(t).get(created.body.id);
  assert.equal(got.status, 200, got.text);
  return got.body as ApiRun;
}

/** Creates a run that passed preflight (awaiting_approval). */
export async function createAwaiting(t: TestApp, who: Subject, body: RunBody): Promise<ApiRun> {
  const run = await createSettled(t, who, body);
  assert.equal(run.status, 'awaiting_approval', `preflight did not pass: ${JSON.stringify(run.error)}`);
  return run;
}

/** Cancels (as an admin) whatever run holds each environment, so the next test can create one. */
export async function freeEnvironments(t: TestApp): Promise<void> {
  await t.settle();
  const envs = await api(t).environments('root');
  assert.equal(envs.status, 200, envs.text);
  for (const env of envs.body as Array<{ activeRun: { id: string } | null }>) {
    if (!env.activeRun) continue;
    const res = await api(t).cancel(env.activeRun.id, 'root', 'test cleanup');
    assert.equal(res.status, 200, res.text);
  }
  await t.settle();
}

export interface ApiRun {
  id: string;
  environment: string;
  status: string;
  description: string;
  ticket: string | null;
  to: string | null;
  requestedBy: string;
  createdAt: string;
  updatedAt: string;
  schedule: { mode: string; at?: string };
  scheduledFor: string | null;
  migrations: Array<{ name: string; sha256: string }>;
  digest: string;
  requiredApprovals: string[];
  approvals: Array<{ subject: string; role: string; decision: string; comment: string; digest: string; current: boolean; at: string }>;
  backup: unknown;
  error: { code: string; message: string } | null;
}

export interface ApiEvent {
  id: number;
  runId: string | null;
  environment: string;
  type: string;
  actor: string;
  from: string | null;
  to: string | null;
  details: Record<string, unknown>;
  at: string;
}

export async function eventsOf(t: TestApp, id: string): Promise<ApiEvent[]> {
  const res = await api(t).events(id);
  assert.equal(res.status, 200, res.text);
  return res.body as ApiEvent[];
}

/**
 * The audit trail of a run is complete: oldest first, it starts with
 * run.created (-> created), every status change names the status it left (the
 * previous event's `to`), and the last one ends in the run's current status.
 * Returns the status path.
 */
export async function assertCompleteTrail(t: TestApp, run: { id: string; environment: string; status: string }): Promise<string[]> {
  const events = await eventsOf(t, run.id);
  assert.ok(events.length > 0, 'a run without events');
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    assert.equal(e.runId, run.id);
    assert.equal(e.environment, run.environment);
    assert.ok(e.actor.length > 0, 'every event names its actor');
    assert.match(e.at, ISO);
    assert.equal(typeof e.details, 'object');
    if (i > 0) {
      assert.ok(e.id > events[i - 1]!.id, 'events are oldest first');
      assert.ok(Date.parse(e.at) >= Date.parse(events[i - 1]!.at), 'event times never go back');
    }
  }
  const transitions = events.filter((e) => e.to !== null);
  assert.equal(transitions[0]!.type, 'run.created');
  assert.equal(transitions[0]!.from, null);
  assert.equal(transitions[0]!.to, 'created');
  const path = ['created'];
  for (const e of transitions.slice(1)) {
    assert.equal(e.from, path[path.length - 1], `event ${e.type} (${e.from} -> ${e.to}) does not start where the previous one ended`);
    path.push(e.to!);
  }
  assert.equal(path[path.length - 1], run.status, 'the last status change is the current status');
  // Non-transition events (approvals) carry no from/to at all.
  for (const e of events.filter((e) => e.to === null)) assert.equal(e.from, null);
  return path;
}

/** Records migrations as applied on a target, the way node-pg-migrate does. */
export async function markApplied(db: TestDatabase, names: readonly string[], table = 'pgmigrations'): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${table} (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)`);
  for (const name of names) await db.query(`INSERT INTO ${table} (name, run_on) VALUES ($1, now())`, [name]);
}

/** Applies the first `count` repo migrations to a target for real (schema and history agree). */
export async function applyRepoMigrations(db: TestDatabase, count: number): Promise<void> {
  await runner({
    databaseUrl: db.url,
    dir: resolve(PROJECT_ROOT, 'database/migrations'),
    migrationsTable: 'pgmigrations',
    direction: 'up',
    count,
    singleTransaction: false,
    log: () => undefined,
  });
}

/** Back to an empty target: history and schema both (they must agree for a rehearsal). */
export async function forgetApplied(db: TestDatabase, table = 'pgmigrations'): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public; DROP EXTENSION IF EXISTS pgcrypto;');
}

/** A tiny node-pg-migrate migration. */
export const migrationSource = (upSql: string, downSql = 'SELECT 1') =>
  `export const up = (pgm) => { pgm.sql(${JSON.stringify(upSql)}); };\nexport const down = (pgm) => { pgm.sql(${JSON.stringify(downSql)}); };\n`;

/** A temporary migrations directory the tests can change between runs. */
export async function tempMigrationsDir(files: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), 'sf-migrations-'));
  const write = (name: string, source: string) => writeFile(join(dir, `${name}.js`), source);
  for (const [name, source] of Object.entries(files)) await write(name, source);
  return {
    dir,
    write,
    remove: (name: string) => unlink(join(dir, `${name}.js`)),
    read: (name: string) => readFile(join(dir, `${name}.js`)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** JS source of a migration config whose environments use the given directories. */
export function migrationConfigSource(opts: {
  stagingDir: string;
  productionDir: string;
  productionFreezes?: Array<{ from: string; to: string; reason: string }>;
}): string {
  const config = {
    environments: {
      staging: {
        databaseUrlEnv: 'STAGING_DATABASE_URL',
        migrationsDir: opts.stagingDir,
        approvals: { required: ['any'] },
      },
      production: {
        databaseUrlEnv: 'PRODUCTION_DATABASE_URL',
        migrationsDir: opts.productionDir,
        approvals: { required: ['engineering', 'sre'] },
        windows: [{ cron: '0 2 * * 2-4', durationMinutes: 120, timezone: 'Europe/Berlin' }],
        freezes: opts.productionFreezes ?? [],
      },
    },
  };
  return `export default ${JSON.stringify(config, null, 2)};\n`;
}
