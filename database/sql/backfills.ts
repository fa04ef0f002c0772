import pg from 'pg';
import type { Query } from '../db.js';

// Backfill jobs live on the TARGET database, next to the rows they change, in
// a schema of their own (sfm_backfill) that the service creates on first use:
// a job's checkpoint must commit in the same transaction as its batch, which
// is only possible in the database the batch writes to. The StarForge schema's
// own public.backfill_jobs (database/migrations) is left to the game backend.

export const BACKFILL_SCHEMA = 'sfm_backfill';
/** pg_advisory_xact_lock(class, key) pair for creating the schema: replicas queue, never race. */
export const BACKFILL_LOCK_CLASS = 7319;
export const BACKFILL_SCHEMA_LOCK = 1;
/** Job statuses in which a job still has work to do (one such job per backfill name). */
export const OPEN_STATUSES = ['pending', 'running', 'paused'] as const;
export const BACKFILL_STATUSES = ['pending', 'running', 'paused', 'succeeded', 'failed', 'cancelled'] as const;
export type BackfillStatus = (typeof BACKFILL_STATUSES)[number];

const S = BACKFILL_SCHEMA;
const list = (values: readonly string[]) => values.map((v) => `'${v}'`).join(', ');

// ------------------------------------------------------------------ schema

/** The last object the DDL creates: when it exists, the whole schema does (one transaction). */
export const backfillSchemaExists = (): Query => ({
  text: `SELECT to_regclass('${S}.backfill_event_receipts') IS NOT NULL AS exists`,
});

export const lockBackfillSchema = (): Query => ({
  text: 'SELECT pg_advisory_xact_lock($1, $2)',
  values: [BACKFILL_LOCK_CLASS, BACKFILL_SCHEMA_LOCK],
});

/** The whole schema, run once inside the caller's transaction under lockBackfillSchema(). */
export const createBackfillSchema = (): Query => ({
  text: `
    CREATE SCHEMA IF NOT EXISTS ${S};
    COMMENT ON SCHEMA ${S} IS 'StarForge Migration Service: backfill jobs, failures and their audit trail (created by the service, v1)';

    CREATE TABLE ${S}.backfill_jobs (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      environment text NOT NULL,
      name text NOT NULL,
      status text NOT NULL CHECK (status IN (${list(BACKFILL_STATUSES)})),
      -- The definition as it was when the job was created: a file edited later never changes a running job.
      definition jsonb NOT NULL,
      failures_of uuid REFERENCES ${S}.backfill_jobs (id),
      last_key text,
      rows_done bigint NOT NULL DEFAULT 0,
      rows_failed bigint NOT NULL DEFAULT 0,
      rows_scanned bigint NOT NULL DEFAULT 0,
      batches bigint NOT NULL DEFAULT 0,
      batch_size integer NOT NULL CHECK (batch_size BETWEEN 1 AND 100000),
      max_rows_per_second integer CHECK (max_rows_per_second > 0),
      window_only boolean NOT NULL DEFAULT false,
      total_estimate bigint,
      remaining_rows bigint,
      remaining_at timestamptz,
      rows_per_second double precision,
      max_batch_ms integer,
      waiting text,
      lease_owner text,
      lease_expires_at timestamptz,
      created_by text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      finished_at timestamptz,
      last_error text
    );
    -- One job with work left per backfill: a second start is refused by the database, not by a check-then-insert.
    CREATE UNIQUE INDEX backfill_jobs_one_open ON ${S}.backfill_jobs (name) WHERE status IN (${list(OPEN_STATUSES)});
    CREATE INDEX backfill_jobs_claim ON ${S}.backfill_jobs (seq) WHERE status IN ('pending', 'running');

    CREATE TABLE ${S}.backfill_failures (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      job_id uuid NOT NULL REFERENCES ${S}.backfill_jobs (id),
      key text NOT NULL,
      error text NOT NULL,
      sqlstate text,
      at timestamptz NOT NULL DEFAULT now(),
      resolved_at timestamptz,
      resolved_by uuid REFERENCES ${S}.backfill_jobs (id)
    );
    CREATE INDEX backfill_failures_job ON ${S}.backfill_failures (job_id, id);

    -- The audit trail of every job state change, written in the transaction of the change.
    CREATE TABLE ${S}.backfill_events (
      seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
      job_id uuid NOT NULL REFERENCES ${S}.backfill_jobs (id),
      environment text NOT NULL,
      type text NOT NULL,
      actor text NOT NULL,
      from_status text,
      to_status text,
      details jsonb NOT NULL DEFAULT '{}'::jsonb,
      at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX backfill_events_job ON ${S}.backfill_events (job_id, seq);
    CREATE FUNCTION ${S}.append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      RAISE EXCEPTION '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $fn$;
    CREATE TRIGGER backfill_events_no_update_delete BEFORE UPDATE OR DELETE ON ${S}.backfill_events
      FOR EACH ROW EXECUTE FUNCTION ${S}.append_only();
    CREATE TRIGGER backfill_events_no_truncate BEFORE TRUNCATE ON ${S}.backfill_events
      FOR EACH STATEMENT EXECUTE FUNCTION ${S}.append_only();

    -- Which events have been copied to the control database's run_events (an outbox's receipts).
    CREATE TABLE ${S}.backfill_event_receipts (
      event_seq bigint PRIMARY KEY REFERENCES ${S}.backfill_events (seq),
      mirrored_at timestamptz NOT NULL DEFAULT now()
    );
  `,
});

// ------------------------------------------------------------------ jobs

export interface JobRow {
  id: string;
  seq: string;
  environment: string;
  name: string;
  status: BackfillStatus;
  definition: StoredDefinition;
  failures_of: string | null;
  last_key: string | null;
  rows_done: string;
  rows_failed: string;
  rows_scanned: string;
  batches: string;
  batch_size: number;
  max_rows_per_second: number | null;
  window_only: boolean;
  total_estimate: string | null;
  remaining_rows: string | null;
  remaining_at: Date | null;
  rows_per_second: number | null;
  max_batch_ms: number | null;
  waiting: string | null;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  last_error: string | null;
  /** Failures of this job no later job has fixed (computed by the read queries). */
  failures_open?: string;
}

/** What a job keeps of its definition file. */
export interface StoredDefinition {
  table: string;
  keyColumn: string;
  batch: string;
  remaining: string | null;
  sha256: string;
  description: string | null;
}

const JOB_COLUMNS = `j.*, (SELECT count(*) FROM ${S}.backfill_failures f WHERE f.job_id = j.id AND f.resolved_at IS NULL) AS failures_open`;

export interface NewJob {
  environment: string;
  name: string;
  definition: StoredDefinition;
  failuresOf: string | null;
  batchSize: number;
  maxRowsPerSecond: number | null;
  windowOnly: boolean;
  createdBy: string;
  totalEstimate: number | null;
}

export const insertJob = (j: NewJob): Query => ({
  text: `INSERT INTO ${S}.backfill_jobs (environment, name, status, definition, failures_of, batch_size, max_rows_per_second, window_only, created_by, total_estimate)
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
  values: [j.environment, j.name, JSON.stringify(j.definition), j.failuresOf, j.batchSize, j.maxRowsPerSecond, j.windowOnly, j.createdBy, j.totalEstimate],
});

export const jobById = (id: string): Query => ({
  text: `SELECT ${JOB_COLUMNS} FROM ${S}.backfill_jobs j WHERE j.id = $1`,
  values: [id],
});

/** The job row, locked until the caller's transaction ends (waits for an in-flight batch). */
export const lockJob = (id: string): Query => ({
  text: `SELECT * FROM ${S}.backfill_jobs WHERE id = $1 FOR UPDATE`,
  values: [id],
});

export const openJobOf = (name: string): Query => ({
  text: `SELECT id, status FROM ${S}.backfill_jobs WHERE name = $1 AND status IN (${list(OPEN_STATUSES)})`,
  values: [name],
});

export const listJobs = (status: string | null, limit: number): Query => ({
  text: `SELECT ${JOB_COLUMNS} FROM ${S}.backfill_jobs j WHERE ($1::text IS NULL OR j.status = $1) ORDER BY j.seq DESC LIMIT $2`,
  values: [status, limit],
});

export interface StatusPatch {
  status: BackfillStatus;
  finished?: boolean;
  started?: boolean;
  lastError?: string | null;
  /** Drop the lease (pause, resume, cancel, finish): the next claim starts afresh. */
  clearLease?: boolean;
  remainingRows?: number | null;
}

export const setJobStatus = (id: string, p: StatusPatch): Query => ({
  text: `UPDATE ${S}.backfill_jobs SET status = $2, updated_at = now(), waiting = NULL,
           finished_at = CASE WHEN $3::boolean THEN now() ELSE finished_at END,
           started_at = CASE WHEN $4::boolean THEN coalesce(started_at, now()) ELSE started_at END,
           last_error = CASE WHEN $5::boolean THEN $6 ELSE last_error END,
           lease_owner = CASE WHEN $7::boolean THEN NULL ELSE lease_owner END,
           lease_expires_at = CASE WHEN $7::boolean THEN NULL ELSE lease_expires_at END,
           remaining_rows = CASE WHEN $8::boolean THEN $9 ELSE remaining_rows END,
           remaining_at = CASE WHEN $8::boolean THEN now() ELSE remaining_at END
         WHERE id = $1 RETURNING *`,
  values: [id, p.status, p.finished ?? false, p.started ?? false, p.lastError !== undefined, p.lastError ?? null,
    p.clearLease ?? false, p.remainingRows !== undefined, p.remainingRows ?? null],
});

// ------------------------------------------------------------------ leases

/**
 * Candidate for a claim: the oldest job with work to do whose lease lapsed (or
 * that has none). SKIP LOCKED: a job another replica is claiming, or whose
 * batch is in flight, is passed over rather than waited for.
 */
export const lockClaimable = (): Query => ({
  text: `SELECT * FROM ${S}.backfill_jobs
         WHERE status IN ('pending', 'running') AND (lease_expires_at IS NULL OR lease_expires_at < clock_timestamp())
         ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED`,
});

export const takeJobLease = (id: string, owner: string, leaseMs: number): Query => ({
  text: `UPDATE ${S}.backfill_jobs SET lease_owner = $2, lease_expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000),
           waiting = NULL, updated_at = now()
         WHERE id = $1 RETURNING *`,
  values: [id, owner, leaseMs],
});

/** Renews the lease while its owner still holds it on a running job; 0 rows = stop (paused, cancelled or taken over). */
export const renewJobLease = (id: string, owner: string, leaseMs: number, waiting: string | null): Query => ({
  text: `UPDATE ${S}.backfill_jobs SET lease_expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000), waiting = $4
         WHERE id = $1 AND lease_owner = $2 AND status = 'running'`,
  values: [id, owner, leaseMs, waiting],
});

/**
 * Gives the job back: no owner, and nobody claims it before `notBeforeMs`
 * from now (0 = at once). Used on shutdown and while outside a window.
 */
export const releaseJobLease = (id: string, owner: string, notBeforeMs: number, waiting: string | null): Query => ({
  text: `UPDATE ${S}.backfill_jobs SET lease_owner = NULL,
           lease_expires_at = CASE WHEN $3::double precision > 0 THEN clock_timestamp() + make_interval(secs => $3::double precision / 1000) END,
           waiting = $4, updated_at = now()
         WHERE id = $1 AND lease_owner = $2`,
  values: [id, owner, notBeforeMs, waiting],
});

/** Before a claimed job's first batch (and for an unowned, waiting one): why it waits, and until when nobody retries. */
export const noteWaiting = (id: string, waiting: string | null, notBeforeMs: number): Query => ({
  text: `UPDATE ${S}.backfill_jobs SET waiting = $2, lease_owner = NULL,
           lease_expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000)
         WHERE id = $1`,
  values: [id, waiting, notBeforeMs],
});

// ------------------------------------------------------------------ batches

export interface Checkpoint {
  id: string;
  owner: string;
  leaseMs: number;
  lastKey: string;
  rowsDone: number;
  rowsFailed: number;
  rowsScanned: number;
  rowsPerSecond: number | null;
  batchMs: number;
}

/** The checkpoint, in the batch's own transaction: it commits exactly when the batch does. */
export const checkpoint = (c: Checkpoint): Query => ({
  text: `UPDATE ${S}.backfill_jobs SET last_key = $4, rows_done = rows_done + $5, rows_failed = rows_failed + $6,
           rows_scanned = rows_scanned + $7, batches = batches + 1, rows_per_second = $8,
           max_batch_ms = GREATEST(coalesce(max_batch_ms, 0), $9), waiting = NULL, updated_at = now(),
           lease_expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000)
         WHERE id = $1 AND lease_owner = $2`,
  values: [c.id, c.owner, c.leaseMs, c.lastKey, c.rowsDone, c.rowsFailed, c.rowsScanned, c.rowsPerSecond, Math.round(c.batchMs)],
});

/** The latest remaining-rows count, while the caller still owns the job. */
export const noteRemaining = (id: string, owner: string, remaining: number | null): Query => ({
  text: `UPDATE ${S}.backfill_jobs SET remaining_rows = $3, remaining_at = now() WHERE id = $1 AND lease_owner = $2`,
  values: [id, owner, remaining],
});

export const insertFailure = (jobId: string, key: string, error: string, sqlstate: string | null): Query => ({
  text: `INSERT INTO ${S}.backfill_failures (job_id, key, error, sqlstate) VALUES ($1, $2, $3, $4)`,
  values: [jobId, key, error, sqlstate],
});

export const failuresOfJob = (jobId: string, limit: number, afterId: number): Query => ({
  text: `SELECT id, key, error, sqlstate, at, resolved_at, resolved_by FROM ${S}.backfill_failures
         WHERE job_id = $1 AND id > $3 ORDER BY id LIMIT $2`,
  values: [jobId, limit, afterId],
});

/** The next unresolved failures of `sourceJobId` after failure id `afterId`, for a failures-only job. */
export const nextOpenFailures = (sourceJobId: string, afterId: number, limit: number): Query => ({
  text: `SELECT id, key FROM ${S}.backfill_failures WHERE job_id = $1 AND id > $2 AND resolved_at IS NULL ORDER BY id LIMIT $3`,
  values: [sourceJobId, afterId, limit],
});

export const countOpenFailures = (jobId: string): Query => ({
  text: `SELECT count(*)::bigint AS n FROM ${S}.backfill_failures WHERE job_id = $1 AND resolved_at IS NULL`,
  values: [jobId],
});

export const resolveFailure = (failureId: string, byJob: string): Query => ({
  text: `UPDATE ${S}.backfill_failures SET resolved_at = now(), resolved_by = $2 WHERE id = $1`,
  values: [failureId, byJob],
});

// ------------------------------------------------------------------ the definition's own SQL

/** A validated, optionally schema-qualified name, each part quoted. */
export function quoteQualified(name: string): string {
  return name.split('.').map((part) => pg.escapeIdentifier(part)).join('.');
}

/**
 * The next batch's key range after `lastKey` (null: from the start): its first
 * and last key (as text) and how many keys it holds. The key column leads an
 * index (checked when the job is created), so this is an index range scan.
 */
export const nextKeyRange = (table: string, keyColumn: string, lastKey: string | null, limit: number): Query => {
  const k = pg.escapeIdentifier(keyColumn);
  const where = lastKey === null ? '' : `WHERE ${k} > $2`;
  // ORDER BY b.k, never a bare k: that would name the text output column and sort '1000' before '999'.
  return {
    text: `WITH b AS MATERIALIZED (SELECT ${k} AS k FROM ${quoteQualified(table)} ${where} ORDER BY ${k} LIMIT $1)
           SELECT (SELECT b.k::text FROM b ORDER BY b.k LIMIT 1) AS lo, (SELECT b.k::text FROM b ORDER BY b.k DESC LIMIT 1) AS hi,
                  (SELECT count(*) FROM b)::int AS n`,
    values: lastKey === null ? [limit] : [limit, lastKey],
  };
};

/** The definition's batch statement for keys $1..$2 (both inclusive). */
export const runBatch = (statement: string, lo: string, hi: string): Query => ({ text: statement, values: [lo, hi] });

/** The definition's "remaining rows" query. */
export const runRemaining = (statement: string): Query => ({ text: statement });

/** Planner's row estimate of the table (progress when there is no remaining query). */
export const tableEstimate = (table: string): Query => ({
  text: 'SELECT GREATEST(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = to_regclass($1)',
  values: [table],
});

/**
 * Whether the table exists, has the key column, an index the key column
 * leads, and whether that column is NOT NULL and unique on its own: keyset
 * batches never see a NULL key, and a repeated key would make a batch unbounded.
 */
export const keyColumnFacts = (table: string, keyColumn: string): Query => ({
  text: `SELECT to_regclass($1) IS NOT NULL AS table_exists,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped) AS column_exists,
           EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = to_regclass($1) AND a.attname = $2 AND i.indisvalid AND i.indpred IS NULL) AS indexed,
           COALESCE((SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped), false) AS not_null,
           EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = to_regclass($1) AND a.attname = $2 AND i.indisvalid AND i.indpred IS NULL
                     AND i.indisunique AND i.indnkeyatts = 1) AS unique_key`,
  values: [table, keyColumn],
});

/** Plans (never runs) a statement, so a definition that does not fit the target is refused at creation. */
export const prepareStatement = (name: string, statement: string): Query => ({ text: `PREPARE ${pg.escapeIdentifier(name)} AS ${statement}` });
export const deallocateStatement = (name: string): Query => ({ text: `DEALLOCATE ${pg.escapeIdentifier(name)}` });

// ------------------------------------------------------------------ pressure

/**
 * How busy the target is: other active sessions on this database, and the
 * largest replay lag of its streaming replicas (NULL without replicas, or
 * without the pg_monitor privilege to see it).
 */
export const targetPressure = (): Query => ({
  text: `SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'
                   AND backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS active,
                (SELECT max(EXTRACT(epoch FROM replay_lag)) FROM pg_stat_replication)::double precision AS lag_seconds`,
});

/** Transaction-local settings of a batch: lock and statement timeouts, and a session name operators can see. */
export const batchSettings = (lockTimeoutMs: number, statementTimeoutMs: number, applicationName: string): Query => ({
  text: `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true), set_config('application_name', $3, true)`,
  values: [`${lockTimeoutMs}ms`, `${statementTimeoutMs}ms`, applicationName.slice(0, 63)],
});

// ------------------------------------------------------------------ audit

export interface NewBackfillEvent {
  jobId: string;
  environment: string;
  type: string;
  actor: string;
  from: string | null;
  to: string | null;
  details: Record<string, unknown>;
}

export const insertBackfillEvent = (e: NewBackfillEvent): Query => ({
  text: `INSERT INTO ${S}.backfill_events (job_id, environment, type, actor, from_status, to_status, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
  values: [e.jobId, e.environment, e.type, e.actor, e.from, e.to, JSON.stringify(e.details)],
});

export interface BackfillEventRow {
  seq: string;
  id: string;
  job_id: string;
  environment: string;
  type: string;
  actor: string;
  from_status: string | null;
  to_status: string | null;
  details: Record<string, unknown>;
  at: Date;
}

export const eventsOfJob = (jobId: string): Query => ({
  text: `SELECT * FROM ${S}.backfill_events WHERE job_id = $1 ORDER BY seq`,
  values: [jobId],
});

/** Events not yet copied to the control database, oldest first. */
export const unmirroredEvents = (limit: number): Query => ({
  text: `SELECT e.* FROM ${S}.backfill_events e
         WHERE NOT EXISTS (SELECT 1 FROM ${S}.backfill_event_receipts r WHERE r.event_seq = e.seq)
         ORDER BY e.seq LIMIT $1`,
  values: [limit],
});

export const insertReceipts = (seqs: string[]): Query => ({
  text: `INSERT INTO ${S}.backfill_event_receipts (event_seq) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING`,
  values: [seqs],
});

/**
 * Control database side: the copy of a target event in run_events (run_id
 * NULL). The unique index run_events_backfill_event_id (control migration
 * 1731000000500) makes a second copy of one event (a retry after a crash, or
 * two replicas copying at once) a no-op.
 */
export const mirrorEventToControl = (e: BackfillEventRow): Query => ({
  // from/to go into details, not run_events' own columns: those feed the run
  // transition counter and the run notifications (triggers on run_events).
  text: `INSERT INTO run_events (run_id, environment, type, actor, details, created_at)
         VALUES (NULL, $1, $2, $3, $4, $5)
         ON CONFLICT ((details->>'eventId')) WHERE type LIKE 'backfill.%' DO NOTHING`,
  values: [e.environment, e.type, e.actor, JSON.stringify({ ...e.details, jobId: e.job_id, eventId: e.id, from: e.from_status, to: e.to_status }), e.at],
});
