import type { Query } from '../db.js';

/** Claims a key; returns no row when the (subject, key) pair exists (waiting for a concurrent claimer to finish). */
export const claimIdempotencyKey = (subject: string, key: string, requestHash: string): Query => ({
  text: `INSERT INTO idempotency_keys (subject, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (subject, key) DO NOTHING RETURNING key`,
  values: [subject, key, requestHash],
});

export const selectIdempotencyKey = (subject: string, key: string): Query => ({
  text: 'SELECT request_hash, run_id FROM idempotency_keys WHERE subject = $1 AND key = $2',
  values: [subject, key],
});

export const bindIdempotencyKey = (subject: string, key: string, runId: string): Query => ({
  text: 'UPDATE idempotency_keys SET run_id = $3 WHERE subject = $1 AND key = $2',
  values: [subject, key, runId],
});
