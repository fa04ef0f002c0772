import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { exec, maybeOne, one, rows } from '../../database/db.js';
import { isPgError, LOCK_NOT_AVAILABLE, QUERY_CANCELED, UNIQUE_VIOLATION } from '../../database/pg-errors.js';
import { deallocateStatement, keyColumnFacts, prepareStatement, tableEstimate } from '../../database/sql/backfill-definition.js';
import { eventsOfJob, type BackfillEventRow } from '../../database/sql/backfill-events.js';
import { countOpenFailures, failuresOfJob } from '../../database/sql/backfill-failures.js';
import { insertJob, jobById, listJobs, lockJob, openJobOf, setJobStatus, type JobRow } from '../../database/sql/backfill-jobs.js';
import type { BackfillStatus } from '../../database/sql/backfill-schema.js';
import { setLocalTimeouts } from '../../database/sql/metrics.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import { conflict, notFound, ServiceError, unavailable, unprocessable } from '../errors.js';
import { environmentOf } from '../etl/health.js';
import { timedRead } from '../metrics/time-box.js';
import type { Principal } from '../principal.js';
import { listDefinitions, loadDefinition, storedDefinition, type BackfillDefinition } from './definitions.js';
import { appendBackfillEvent, ensureBackfillSchema, mirrorEvents, presentJob, schemaExists, type BackfillJob } from './store.js';

const READ_TIMEOUT_MS = 5000;
const DEFAULT_BATCH_SIZE = 1000;

export interface CreateBackfill {
  environment: string;
  name: string;
  batchSize?: number;
  maxRowsPerSecond?: number | null;
  windowOnly?: boolean;
  failuresOf?: string;
  reason?: string;
}

export interface RetryOptions {
  batchSize?: number;
  maxRowsPerSecond?: number | null;
  windowOnly?: boolean;
  reason?: string;
}

export interface ListBackfills {
  environment?: string;
  status?: BackfillStatus;
  limit?: number;
}

type Action = 'pause' | 'resume' | 'cancel';
const ALLOWED: Record<Action, BackfillStatus[]> = {
  pause: ['pending', 'running'],
  resume: ['paused'],
  cancel: ['pending', 'running', 'paused'],
};

export interface BackfillFailure {
  id: number;
  key: string;
  error: string;
  sqlstate: string | null;
  at: string;
  resolvedAt: string | null;
  resolvedBy: string | null;
}

export interface BackfillEvent {
  id: string;
  jobId: string;
  environment: string;
  type: string;
  actor: string;
  from: string | null;
  to: string | null;
  details: Record<string, unknown>;
  at: string;
}

/** A statement the target refused while planning a definition: the caller's definition does not fit it (422). */
function notFitting(err: unknown, env: EnvironmentConfig, what: string): ServiceError {
  const e = err as { code?: string; message?: string };
  return unprocessable(`The backfill's ${what} does not fit the ${env.name} database: ${e.message ?? 'refused'}${e.code ? ` (SQLSTATE ${e.code})` : ''}. Apply the migration that adds what it needs first, or fix the definition.`, { sqlState: e.code ?? null });
}

/** A lock or statement timeout on the target is an outage for the caller (503), never a 500. */
function timeoutToUnavailable(err: unknown, env: EnvironmentConfig): unknown {
  if (isPgError(err, LOCK_NOT_AVAILABLE) || isPgError(err, QUERY_CANCELED)) {
    return unavailable(`The ${env.name} database did not answer in time (a batch may be holding the job); retry shortly.`);
  }
  return err;
}

/**
 * The backfill API: start, list, read, pause, resume, cancel and retry the
 * failed rows of backfill jobs. Jobs and their audit events live on the
 * target (sfm_backfill); every change is one target transaction with its
 * event, then the event is copied to the control database's run_events.
 */
export function createBackfillsService(ctx: ServiceContext) {
  const { control, targets, log } = ctx;

  /** Copies the target's new audit events to the control database now; a failure is left to the executor's sweep. */
  async function copyEvents(env: EnvironmentConfig, client: pg.ClientBase): Promise<void> {
    try {
      while ((await mirrorEvents(client, control)) > 0) { /* until none is left */ }
    } catch (err) {
      log.warn({ environment: env.name, reason: (err as Error).message }, 'backfill audit event not copied to the control database yet; the executor retries');
    }
  }

  function configured(): EnvironmentConfig[] {
    return Object.values(ctx.config.environments).filter((env) => targets.isConfigured(env.name));
  }

  async function readJob(env: EnvironmentConfig, id: string): Promise<JobRow | undefined> {
    return targets.withClient(env, (client) => timedRead(client, READ_TIMEOUT_MS, READ_TIMEOUT_MS, async (c) => {
      if (!(await schemaExists(c))) return undefined;
      return maybeOne<JobRow>(c, jobById(id));
    }));
  }

  /** Finds a job by id on whichever target holds it (ids are uuids, unique across environments). */
  async function locate(id: string): Promise<{ env: EnvironmentConfig; row: JobRow }> {
    const unreachable: string[] = [];
    for (const env of configured()) {
      try {
        const row = await readJob(env, id);
        if (row) return { env, row };
      } catch (err) {
        if (err instanceof ServiceError && err.statusCode < 500 && err.statusCode !== 422) throw err;
        unreachable.push(env.name);
      }
    }
    if (unreachable.length) throw unavailable(`Backfill job ${id} was not found, and the ${unreachable.join(', ')} database(s) could not be searched; retry shortly.`);
    throw notFound(`There is no backfill job ${id}.`);
  }

  async function create(input: CreateBackfill, principal: Principal): Promise<BackfillJob> {
    const env = environmentOf(ctx, input.environment);
    if (!targets.isConfigured(env.name)) throw unprocessable(`Environment "${env.name}" has no database: set ${env.databaseUrlEnv}.`);
    let source: JobRow | null = null;
    if (input.failuresOf) {
      const found = await readJob(env, input.failuresOf).catch((err) => { throw timeoutToUnavailable(err, env); });
      if (!found) throw unprocessable(`failuresOf: there is no backfill job ${input.failuresOf} in ${env.name}.`);
      source = found;
      if (found.name !== input.name) throw unprocessable(`failuresOf: job ${found.id} ran the backfill "${found.name}", not "${input.name}".`);
    }
    const definition: BackfillDefinition = await loadDefinition(env.backfillsDir, input.name);
    if (source && (source.definition.table !== definition.table || source.definition.keyColumn !== definition.keyColumn)) {
      throw unprocessable(`The definition of "${definition.name}" now changes ${definition.table} by ${definition.keyColumn}, but job ${source.id} recorded keys of ${source.definition.table}.${source.definition.keyColumn}; its failed keys cannot be retried with it.`);
    }
    const batchSize = input.batchSize ?? DEFAULT_BATCH_SIZE;
    const maxRowsPerSecond = input.maxRowsPerSecond ?? null;
    const windowOnly = input.windowOnly ?? false;

    return targets.withClient(env, async (client) => {
      try {
        const estimate = await checkFits(client, env, definition);
        // Only a request that passed every check creates anything, the schema included.
        await ensureBackfillSchema(client);
        await client.query('BEGIN');
        let row: JobRow;
        try {
          await exec(client, setLocalTimeouts(READ_TIMEOUT_MS, READ_TIMEOUT_MS));
          let total = estimate;
          if (source) {
            const locked = await maybeOne<JobRow>(client, lockJob(source.id));
            if (!locked || !['succeeded', 'failed', 'cancelled'].includes(locked.status)) {
              throw conflict(`Job ${source.id} is ${locked?.status ?? 'gone'}; retry its failed rows once it has stopped (it may still record more).`, { jobId: source.id });
            }
            const open = Number((await one<{ n: string }>(client, countOpenFailures(source.id))).n);
            if (open === 0) throw conflict(`Job ${source.id} has no failed rows left to retry.`, { jobId: source.id });
            total = open;
          }
          await client.query('SAVEPOINT insert_job');
          try {
            row = await one<JobRow>(client, insertJob({
              environment: env.name, name: definition.name, definition: storedDefinition(definition), failuresOf: source?.id ?? null,
              batchSize, maxRowsPerSecond, windowOnly, createdBy: principal.subject, totalEstimate: total,
            }));
          } catch (err) {
            if (!isPgError(err, UNIQUE_VIOLATION)) throw err;
            await client.query('ROLLBACK TO SAVEPOINT insert_job');
            const open = await maybeOne<{ id: string; status: string }>(client, openJobOf(definition.name));
            throw conflict(`Backfill "${definition.name}" already has a job with work left on ${env.name}${open ? ` (${open.id}, ${open.status})` : ''}; pause, resume or cancel that one.`, open ? { jobId: open.id } : {});
          }
          await appendBackfillEvent(client, {
            jobId: row.id, environment: env.name, type: 'backfill.pending', actor: principal.subject, from: null, to: 'pending',
            details: {
              name: definition.name, table: definition.table, keyColumn: definition.keyColumn, definitionSha256: definition.sha256,
              batchSize, maxRowsPerSecond, windowOnly, failuresOf: source?.id ?? null, ...(input.reason ? { reason: input.reason } : {}),
            },
          });
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        log.info({ environment: env.name, jobId: row.id, backfill: definition.name, actor: principal.subject }, 'backfill job created');
        await copyEvents(env, client);
        return presentJob((await maybeOne<JobRow>(client, jobById(row.id))) ?? row);
      } catch (err) {
        throw timeoutToUnavailable(err, env);
      }
    });
  }

  /**
   * Whether the definition fits the target: its table exists, the key column
   * leads a valid index, and both statements plan. Read-only in effect (a
   * transaction rolled back); returns the table's row estimate.
   */
  async function checkFits(client: pg.ClientBase, env: EnvironmentConfig, definition: BackfillDefinition): Promise<number | null> {
    await client.query('BEGIN');
    try {
      await exec(client, setLocalTimeouts(READ_TIMEOUT_MS, READ_TIMEOUT_MS));
      const facts = await one<{ table_exists: boolean; column_exists: boolean; indexed: boolean; not_null: boolean; unique_key: boolean }>(client, keyColumnFacts(definition.table, definition.keyColumn));
      if (!facts.table_exists) throw unprocessable(`The ${env.name} database has no table ${definition.table} (backfill "${definition.name}").`);
      if (!facts.column_exists) throw unprocessable(`${definition.table} on ${env.name} has no column ${definition.keyColumn} (the key column of backfill "${definition.name}").`);
      if (!facts.indexed) {
        throw unprocessable(`${definition.table}.${definition.keyColumn} on ${env.name} leads no valid, non-partial index: every batch would scan the table. Key a backfill by an indexed column (usually the primary key).`);
      }
      // Keyset batches walk k > last key: a NULL key is never visited, and a key shared by many rows makes one batch unbounded.
      if (!facts.not_null || !facts.unique_key) {
        throw unprocessable(`${definition.table}.${definition.keyColumn} on ${env.name} is ${!facts.not_null ? 'nullable' : 'not unique on its own'}: rows could be skipped or a batch grow without bound. Key a backfill by a NOT NULL column with a unique index of its own (usually the primary key).`);
      }
      await planOrRefuse(client, env, definition.batch, 'batch statement');
      if (definition.remaining) await planOrRefuse(client, env, definition.remaining, 'remaining-rows query');
      const estimate = Number((await maybeOne<{ n: string }>(client, tableEstimate(definition.table)))?.n ?? 0);
      return estimate > 0 ? estimate : null;
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
    }
  }

  /** PREPAREs (plans, never runs) a statement of the definition on the target; refuses with 422 when it does not fit. */
  async function planOrRefuse(client: pg.ClientBase, env: EnvironmentConfig, statement: string, what: string): Promise<void> {
    const name = `sfm_backfill_check_${randomBytes(4).toString('hex')}`;
    try {
      await exec(client, prepareStatement(name, statement));
    } catch (err) {
      if (typeof (err as { code?: unknown }).code === 'string' && !isPgError(err, QUERY_CANCELED) && !isPgError(err, LOCK_NOT_AVAILABLE)) throw notFitting(err, env, what);
      throw err;
    }
    await exec(client, deallocateStatement(name)).catch(() => undefined);
  }

  async function list(query: ListBackfills): Promise<{ items: BackfillJob[] }> {
    const limit = query.limit ?? 50;
    let envs: EnvironmentConfig[];
    if (query.environment) {
      const env = environmentOf(ctx, query.environment);
      if (!targets.isConfigured(env.name)) throw unprocessable(`Environment "${env.name}" has no database: set ${env.databaseUrlEnv}.`);
      envs = [env];
    } else {
      envs = configured();
    }
    const items: JobRow[] = [];
    for (const env of envs) {
      try {
        items.push(...await targets.withClient(env, (client) => timedRead(client, READ_TIMEOUT_MS, READ_TIMEOUT_MS, async (c) => {
          if (!(await schemaExists(c))) return [];
          return rows<JobRow>(c, listJobs(query.status ?? null, limit));
        })));
      } catch (err) {
        throw timeoutToUnavailable(err, env);
      }
    }
    items.sort((a, b) => b.created_at.getTime() - a.created_at.getTime());
    return { items: items.slice(0, limit).map(presentJob) };
  }

  async function get(id: string): Promise<BackfillJob> {
    return presentJob((await locate(id)).row);
  }

  /** pause / resume / cancel: one target transaction that waits for an in-flight batch, changes the status and appends its event. */
  async function change(id: string, action: Action, principal: Principal, reason: string | undefined): Promise<BackfillJob> {
    const { env } = await locate(id);
    return targets.withClient(env, async (client) => {
      try {
        await client.query('BEGIN');
        let to: BackfillStatus;
        let from: BackfillStatus;
        try {
          // Long enough for a batch in flight to commit (a batch may run up to the
          // environment's statement timeout): when this returns, no batch of the job runs.
          const batchMaxMs = env.statementTimeoutMs + env.lockTimeoutMs;
          await exec(client, setLocalTimeouts(batchMaxMs + 5_000, batchMaxMs));
          const locked = await maybeOne<JobRow>(client, lockJob(id));
          if (!locked) throw notFound(`There is no backfill job ${id}.`);
          from = locked.status;
          if (!ALLOWED[action].includes(from)) {
            throw conflict(`Backfill job ${id} is ${from}; only a job that is ${ALLOWED[action].join(' or ')} can be ${action === 'pause' ? 'paused' : action === 'resume' ? 'resumed' : 'cancelled'}.`, { jobStatus: from });
          }
          to = action === 'pause' ? 'paused' : action === 'cancel' ? 'cancelled' : locked.started_at ? 'running' : 'pending';
          await exec(client, setJobStatus(id, { status: to, clearLease: true, finished: to === 'cancelled' }));
          await appendBackfillEvent(client, {
            jobId: id, environment: env.name, type: `backfill.${to}`, actor: principal.subject, from, to,
            details: { name: locked.name, action, lastKey: locked.last_key, rowsDone: Number(locked.rows_done), ...(reason ? { reason } : {}) },
          });
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        log.info({ environment: env.name, jobId: id, from, to, actor: principal.subject }, `backfill job ${action}d`);
        await copyEvents(env, client);
        return presentJob((await one<JobRow>(client, jobById(id))));
      } catch (err) {
        throw timeoutToUnavailable(err, env);
      }
    });
  }

  async function retryFailures(id: string, principal: Principal, opts: RetryOptions): Promise<BackfillJob> {
    const { env, row } = await locate(id);
    return create({
      environment: env.name, name: row.name, failuresOf: row.id,
      batchSize: opts.batchSize ?? Math.min(row.batch_size, 100), maxRowsPerSecond: opts.maxRowsPerSecond ?? row.max_rows_per_second,
      windowOnly: opts.windowOnly ?? row.window_only, ...(opts.reason ? { reason: opts.reason } : {}),
    }, principal);
  }

  async function failures(id: string, limit: number, after: number): Promise<{ items: BackfillFailure[]; nextAfter: number | null }> {
    const { env } = await locate(id);
    const found = await targets.withClient(env, (client) => timedRead(client, READ_TIMEOUT_MS, READ_TIMEOUT_MS, (c) =>
      rows<{ id: string; key: string; error: string; sqlstate: string | null; at: Date; resolved_at: Date | null; resolved_by: string | null }>(c, failuresOfJob(id, limit, after))));
    const items = found.map((f) => ({
      id: Number(f.id), key: f.key, error: f.error, sqlstate: f.sqlstate, at: f.at.toISOString(), resolvedAt: f.resolved_at?.toISOString() ?? null, resolvedBy: f.resolved_by,
    }));
    return { items, nextAfter: items.length === limit ? items[items.length - 1]!.id : null };
  }

  async function events(id: string): Promise<BackfillEvent[]> {
    const { env } = await locate(id);
    const found = await targets.withClient(env, (client) => timedRead(client, READ_TIMEOUT_MS, READ_TIMEOUT_MS, (c) => rows<BackfillEventRow>(c, eventsOfJob(id))));
    return found.map((e) => ({
      id: e.id, jobId: e.job_id, environment: e.environment, type: e.type, actor: e.actor, from: e.from_status, to: e.to_status, details: e.details, at: e.at.toISOString(),
    }));
  }

  async function definitions(environment: string) {
    const env = environmentOf(ctx, environment);
    const found = await listDefinitions(env.backfillsDir);
    return {
      environment: env.name,
      items: found.map((d) => ({
        name: d.name, file: d.file, valid: d.valid, error: d.error,
        description: d.definition?.description ?? null, table: d.definition?.table ?? null, keyColumn: d.definition?.keyColumn ?? null,
        batch: d.definition?.batch ?? null, remaining: d.definition?.remaining ?? null, sha256: d.definition?.sha256 ?? null,
      })),
    };
  }

  return {
    create,
    list,
    get,
    pause: (id: string, principal: Principal, reason?: string) => change(id, 'pause', principal, reason),
    resume: (id: string, principal: Principal, reason?: string) => change(id, 'resume', principal, reason),
    cancel: (id: string, principal: Principal, reason?: string) => change(id, 'cancel', principal, reason),
    retryFailures,
    failures,
    events,
    definitions,
  };
}

export type BackfillsService = ReturnType<typeof createBackfillsService>;
