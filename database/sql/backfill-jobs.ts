import type { Query } from '../db.js';
import { BACKFILL_SCHEMA, OPEN_STATUSES, statusList, type BackfillStatus } from './backfill-schema.js';

// The job rows of the sfm_backfill schema on the target: create, read, change status.

const S = BACKFILL_SCHEMA;

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
  text: `SELECT id, status FROM ${S}.backfill_jobs WHERE name = $1 AND status IN (${statusList(OPEN_STATUSES)})`,
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
