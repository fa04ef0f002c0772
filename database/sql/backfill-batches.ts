import type { Query } from '../db.js';
import { BACKFILL_SCHEMA } from './backfill-schema.js';

// A batch moves the checkpoint in its own transaction, under its own timeouts.

const S = BACKFILL_SCHEMA;

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

/** Transaction-local settings of a batch: lock and statement timeouts, and a session name operators can see. */
export const batchSettings = (lockTimeoutMs: number, statementTimeoutMs: number, applicationName: string): Query => ({
  text: `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true), set_config('application_name', $3, true)`,
  values: [`${lockTimeoutMs}ms`, `${statementTimeoutMs}ms`, applicationName.slice(0, 63)],
});
