import type { Query } from '../db.js';
import { BACKFILL_SCHEMA } from './backfill-schema.js';

// The rows a batch could not change, one key each, until a later job fixes them.

const S = BACKFILL_SCHEMA;

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
