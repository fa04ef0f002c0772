import type { Query } from '../db.js';
import { BACKFILL_SCHEMA } from './backfill-schema.js';

// Who runs a job is decided by these statements on the target: a lease owner
// and its expiry on the job row.

const S = BACKFILL_SCHEMA;

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
