import type { Query } from '../db.js';

// Co-signed window overrides (window_overrides) and the promotion question.

export interface OverrideRow {
  id: string;
  run_id: string;
  digest: string;
  status: 'awaiting_approval' | 'approved' | 'rejected' | 'expired';
  requested_by: string;
  reason: string;
  decided_by: string | null;
  decision_comment: string | null;
  decided_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export const insertOverride = (runId: string, digest: string, requestedBy: string, reason: string): Query => ({
  text: `INSERT INTO window_overrides (run_id, digest, status, requested_by, reason) VALUES ($1, $2, 'awaiting_approval', $3, $4) RETURNING *`,
  values: [runId, digest, requestedBy, reason],
});

/** The run's override awaiting approval, row-locked. */
export const openOverride = (runId: string): Query => ({
  text: `SELECT * FROM window_overrides WHERE run_id = $1 AND status = 'awaiting_approval' FOR UPDATE`,
  values: [runId],
});

/** The same, read without a lock (the checks before the deciding transaction). */
export const pendingOverride = (runId: string): Query => ({
  text: `SELECT * FROM window_overrides WHERE run_id = $1 AND status = 'awaiting_approval'`,
  values: [runId],
});

export const overridesOfRun = (runId: string): Query => ({
  text: 'SELECT * FROM window_overrides WHERE run_id = $1 ORDER BY created_at, id',
  values: [runId],
});

export const decideOverride = (id: string, status: 'approved' | 'rejected' | 'expired', decidedBy: string | null, comment: string | null): Query => ({
  text: `UPDATE window_overrides SET status = $2, decided_by = $3, decision_comment = $4, decided_at = now(), updated_at = now()
         WHERE id = $1 AND status = 'awaiting_approval' RETURNING *`,
  values: [id, status, decidedBy, comment],
});

/** The latest run of `environment` with this digest that succeeded (the promotion evidence). */
export const succeededRunWithDigest = (environment: string, digest: string): Query => ({
  text: `SELECT r.id, r.environment, r.digest,
           (SELECT e.created_at FROM run_events e WHERE e.run_id = r.id AND e.to_status = 'succeeded' ORDER BY e.id DESC LIMIT 1) AS succeeded_at
         FROM runs r WHERE r.environment = $1 AND r.digest = $2 AND r.status = 'succeeded' ORDER BY r.seq DESC LIMIT 1`,
  values: [environment, digest],
});

/** Other runs of `environment` with this digest, newest first: what a refusal lists. */
export const runsWithDigest = (environment: string, digest: string, limit: number): Query => ({
  text: 'SELECT id, status FROM runs WHERE environment = $1 AND digest = $2 ORDER BY seq DESC LIMIT $3',
  values: [environment, digest, limit],
});

/** The promotion evidence recorded when the run was approved. */
export const promotionOfRun = (runId: string): Query => ({
  text: `SELECT details, created_at FROM run_events WHERE run_id = $1 AND type = 'promotion.verified' ORDER BY id DESC LIMIT 1`,
  values: [runId],
});
