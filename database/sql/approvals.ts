import type { Query } from '../db.js';

export interface NewApproval {
  runId: string;
  subject: string;
  role: string;
  decision: string;
  comment: string;
  digest: string;
}

export const insertApproval = (a: NewApproval): Query => ({
  text: `INSERT INTO run_approvals (run_id, subject, role, decision, comment, digest)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`,
  values: [a.runId, a.subject, a.role, a.decision, a.comment, a.digest],
});

export const approvalsForDigest = (runId: string, digest: string): Query => ({
  text: 'SELECT subject, role, decision FROM run_approvals WHERE run_id = $1 AND digest = $2 ORDER BY id',
  values: [runId, digest],
});
