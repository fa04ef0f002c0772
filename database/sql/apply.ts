import type { Query } from '../db.js';

export const APPLY_LOCK_CLASS = 7318;

export const appendRunLog = (runId: string, phase: string, level: 'info' | 'warn' | 'error', message: string): Query => ({
  text: 'INSERT INTO run_logs (run_id, phase, level, message) VALUES ($1, $2, $3, $4)',
  values: [runId, phase, level, message],
});

export const runLogs = (runId: string): Query => ({
  text: 'SELECT phase, level, message, created_at FROM run_logs WHERE run_id = $1 ORDER BY id',
  values: [runId],
});

/** Merges `patch` into the run's apply_state (top-level keys replaced). */
export const mergeApplyState = (runId: string, patch: object): Query => ({
  text: 'UPDATE runs SET apply_state = apply_state || $2::jsonb, updated_at = now() WHERE id = $1',
  values: [runId, JSON.stringify(patch)],
});

export interface NewBackup {
  id: string;
  runId: string;
  environment: string;
  method: string;
  location: string | null;
  sizeBytes: number | null;
  sha256: string | null;
  createdAt: string;
  verifiedAt: string | null;
  /** pg_dump: the target's size when the dump began (calibrates the next dump's expected size). */
  databaseSizeBytes?: number | null;
}

export const insertBackup = (b: NewBackup): Query => ({
  text: `INSERT INTO backups (id, run_id, environment, method, location, size_bytes, sha256, created_at, verified_at, database_size_bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
  values: [b.id, b.runId, b.environment, b.method, b.location, b.sizeBytes, b.sha256, b.createdAt, b.verifiedAt, b.databaseSizeBytes ?? null],
});

export const backupOfRun = (runId: string): Query => ({
  text: 'SELECT * FROM backups WHERE run_id = $1 AND verified_at IS NOT NULL ORDER BY created_at DESC LIMIT 1',
  values: [runId],
});

export const upsertLedger = (environment: string, name: string, sha256: string, runId: string): Query => ({
  text: `INSERT INTO migration_ledger (environment, name, sha256, run_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (environment, name) DO UPDATE SET sha256 = EXCLUDED.sha256, run_id = EXCLUDED.run_id, applied_at = now()`,
  values: [environment, name, sha256, runId],
});

export const deleteLedger = (environment: string, name: string): Query => ({
  text: 'DELETE FROM migration_ledger WHERE environment = $1 AND name = $2',
  values: [environment, name],
});

export const ledgerOfRun = (runId: string): Query => ({
  text: 'SELECT name, sha256 FROM migration_ledger WHERE run_id = $1',
  values: [runId],
});

export const runsInStatuses = (statuses: readonly string[]): Query => ({
  text: 'SELECT id, status FROM runs WHERE status = ANY($1::text[]) ORDER BY seq',
  values: [statuses],
});

export interface RollbackRow {
  id: string;
  run_id: string;
  mode: 'down' | 'restore';
  status: string;
  requested_by: string;
  reason: string;
  decided_by: string | null;
  decision_comment: string | null;
  error: object | null;
  created_at: Date;
  updated_at: Date;
}

export const insertRollbackRequest = (runId: string, mode: string, requestedBy: string, reason: string): Query => ({
  text: `INSERT INTO rollback_requests (run_id, mode, status, requested_by, reason) VALUES ($1, $2, 'awaiting_approval', $3, $4) RETURNING *`,
  values: [runId, mode, requestedBy, reason],
});

export const openRollbackRequest = (runId: string): Query => ({
  text: `SELECT * FROM rollback_requests WHERE run_id = $1 AND status IN ('awaiting_approval', 'running') FOR UPDATE`,
  values: [runId],
});

export const rollbackRequestsOfRun = (runId: string): Query => ({
  text: 'SELECT * FROM rollback_requests WHERE run_id = $1 ORDER BY created_at',
  values: [runId],
});

export const decideRollbackRequest = (id: string, status: string, decidedBy: string, comment: string): Query => ({
  text: 'UPDATE rollback_requests SET status = $2, decided_by = $3, decision_comment = $4, updated_at = now() WHERE id = $1 RETURNING *',
  values: [id, status, decidedBy, comment],
});

export const finishRollbackRequest = (id: string, status: 'succeeded' | 'failed', error: object | null): Query => ({
  text: 'UPDATE rollback_requests SET status = $2, error = $3, updated_at = now() WHERE id = $1',
  values: [id, status, error === null ? null : JSON.stringify(error)],
});
