import type { Query } from '../db.js';

export type ReportKind = 'preflight' | 'verification' | 'apply' | 'rollback';

export const insertReport = (runId: string, kind: ReportKind, digest: string | null, body: object): Query => ({
  text: 'INSERT INTO run_reports (run_id, kind, digest, body) VALUES ($1, $2, $3, $4) RETURNING id, created_at',
  values: [runId, kind, digest, JSON.stringify(body)],
});

export const latestReport = (runId: string, kind: ReportKind): Query => ({
  text: 'SELECT id, body, digest, created_at FROM run_reports WHERE run_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1',
  values: [runId, kind],
});
