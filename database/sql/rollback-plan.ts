import type { Query } from '../db.js';

// Rollback plans: the target's write counters (recorded with each backup and
// read again at plan time), bounded exact row counts of what a rollback drops,
// and the plan columns of rollback_requests.

/** pg_stat_user_tables' cumulative write counters, per table ('schema.table'). */
export const writeCounters = (): Query => ({
  text: `SELECT schemaname || '.' || relname AS "table", n_tup_ins::bigint AS ins, n_tup_upd::bigint AS upd, n_tup_del::bigint AS del
         FROM pg_stat_user_tables ORDER BY 1`,
});

/** When this database's statistics were last reset (counters before it are gone). */
export const statsReset = (): Query => ({
  text: 'SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()',
});

export const insertWriteCounters = (backupId: string, takenAt: string, statsResetAt: string | null, counters: object): Query => ({
  text: `INSERT INTO backup_write_counters (backup_id, taken_at, stats_reset, counters) VALUES ($1, $2, $3, $4)
         ON CONFLICT (backup_id) DO NOTHING`,
  values: [backupId, takenAt, statsResetAt, JSON.stringify(counters)],
});

export const writeCountersOfBackup = (backupId: string): Query => ({
  text: 'SELECT taken_at, stats_reset, counters FROM backup_write_counters WHERE backup_id = $1',
  values: [backupId],
});

/** Keeps a plan's reads short and out of any lock queue on a busy target. */
export const planSessionLimits = (lockTimeoutMs: number, statementTimeoutMs: number): Query => ({
  text: `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
  values: [`${lockTimeoutMs}ms`, `${statementTimeoutMs}ms`],
});

/** The table's oid and total size, or no row when it does not exist ('schema.table', unescaped: to_regclass quotes nothing). */
export const relationFacts = (escapedQualified: string): Query => ({
  text: `SELECT c.oid::bigint AS oid, pg_total_relation_size(c.oid)::bigint AS bytes
         FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'm')`,
  values: [escapedQualified],
});

export const columnExists = (escapedQualified: string, column: string): Query => ({
  text: `SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped`,
  values: [escapedQualified, column],
});

/** Rows of a table, counted exactly up to `bound` + 1 (identifiers escaped by the caller). */
export const boundedRowCount = (escapedQualified: string, bound: number): Query => ({
  text: `SELECT count(*)::bigint AS n FROM (SELECT 1 FROM ${escapedQualified} LIMIT $1) s`,
  values: [bound + 1],
});

/** Of the first `bound` + 1 rows, how many hold a value in the column and how many bytes those values take. */
export const boundedColumnCount = (escapedQualified: string, escapedColumn: string, bound: number): Query => ({
  text: `SELECT count(*)::bigint AS scanned, count(v)::bigint AS n, COALESCE(sum(pg_column_size(v)), 0)::bigint AS bytes
         FROM (SELECT ${escapedColumn} AS v FROM ${escapedQualified} LIMIT $1) s`,
  values: [bound + 1],
});

export interface PlannedRollbackInsert {
  runId: string;
  mode: string;
  requestedBy: string;
  reason: string;
  overrideWindow: boolean;
  plan: object;
  planDigest: string;
}

export const insertPlannedRollbackRequest = (r: PlannedRollbackInsert): Query => ({
  text: `INSERT INTO rollback_requests (run_id, mode, status, requested_by, reason, override_window, plan, plan_digest)
         VALUES ($1, $2, 'awaiting_approval', $3, $4, $5, $6, $7) RETURNING *`,
  values: [r.runId, r.mode, r.requestedBy, r.reason, r.overrideWindow, JSON.stringify(r.plan), r.planDigest],
});

/** The plan the approver approved, recorded in the approving transaction. */
export const recordApprovedPlan = (id: string, plan: object, digest: string): Query => ({
  text: 'UPDATE rollback_requests SET approved_plan = $2, approved_plan_digest = $3, updated_at = now() WHERE id = $1',
  values: [id, JSON.stringify(plan), digest],
});

/** Approved outside a window without an override: held for the window opening at `at`. */
export const holdRollbackRequest = (id: string, decidedBy: string, comment: string, at: Date): Query => ({
  text: `UPDATE rollback_requests SET status = 'scheduled', decided_by = $2, decision_comment = $3, scheduled_for = $4, updated_at = now()
         WHERE id = $1 RETURNING *`,
  values: [id, decidedBy, comment, at],
});

export const dueRollbackRequests = (now: Date, limit: number): Query => ({
  text: `SELECT id, run_id, mode FROM rollback_requests WHERE status = 'scheduled' AND scheduled_for <= $1 ORDER BY scheduled_for, created_at LIMIT $2`,
  values: [now, limit],
});

/** Claims a due scheduled request; one held by another replica's claim is skipped, not waited for. */
export const claimDueRollback = (id: string, now: Date): Query => ({
  text: `SELECT * FROM rollback_requests WHERE id = $1 AND status = 'scheduled' AND scheduled_for <= $2 FOR UPDATE SKIP LOCKED`,
  values: [id, now],
});

export const rescheduleRollback = (id: string, at: Date): Query => ({
  text: 'UPDATE rollback_requests SET scheduled_for = $2, updated_at = now() WHERE id = $1',
  values: [id, at],
});

/** The plan changed before the window: the approval no longer stands. */
export const reopenRollbackRequest = (id: string): Query => ({
  text: `UPDATE rollback_requests SET status = 'awaiting_approval', decided_by = NULL, decision_comment = NULL, scheduled_for = NULL,
           approved_plan = NULL, approved_plan_digest = NULL, updated_at = now()
         WHERE id = $1 RETURNING *`,
  values: [id],
});

export const startHeldRollback = (id: string): Query => ({
  text: `UPDATE rollback_requests SET status = 'running', updated_at = now() WHERE id = $1 AND status = 'scheduled' RETURNING *`,
  values: [id],
});

/** The run's request awaiting approval, read without a lock (to plan before the deciding transaction). */
export const rollbackAwaitingApproval = (runId: string): Query => ({
  text: `SELECT * FROM rollback_requests WHERE run_id = $1 AND status = 'awaiting_approval'`,
  values: [runId],
});
