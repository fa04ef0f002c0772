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
/** Statuses as an SQL IN list (constants of this module, never user input). */
export const statusList = (values: readonly string[]) => values.map((v) => `'${v}'`).join(', ');

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
      status text NOT NULL CHECK (status IN (${statusList(BACKFILL_STATUSES)})),
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
    CREATE UNIQUE INDEX backfill_jobs_one_open ON ${S}.backfill_jobs (name) WHERE status IN (${statusList(OPEN_STATUSES)});
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
