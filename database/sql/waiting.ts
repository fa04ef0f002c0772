import type { Query } from '../db.js';

/** Runs with a rollback or restore request waiting for an sre, oldest request first. */
export const runsWithOpenRollbackRequests = (exceptRequestedBy: string, limit: number): Query => ({
  text: `SELECT run_id FROM rollback_requests
          WHERE status = 'awaiting_approval' AND requested_by <> $1
          GROUP BY run_id ORDER BY min(created_at) LIMIT $2`,
  values: [exceptRequestedBy, limit],
});
