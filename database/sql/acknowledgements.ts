import type { Query } from '../db.js';

// Acknowledgements of preflight findings given through the API
// (finding_acknowledgements, append-only). Applied to a report when it is
// served or built, never written into it.

export interface AcknowledgementRow {
  id: string;
  run_id: string;
  digest: string;
  finding_id: string;
  rule: string;
  migration: string | null;
  reason: string;
  subject: string;
  role: string;
  created_at: Date;
}

export interface NewAcknowledgement {
  runId: string;
  digest: string;
  findingId: string;
  rule: string;
  migration: string | null;
  reason: string;
  subject: string;
  role: string;
}

export const insertAcknowledgement = (a: NewAcknowledgement): Query => ({
  text: `INSERT INTO finding_acknowledgements (run_id, digest, finding_id, rule, migration, reason, subject, role)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
  values: [a.runId, a.digest, a.findingId, a.rule, a.migration, a.reason, a.subject, a.role],
});

/** Every acknowledgement of the run, oldest first; `digest` narrows to those of one content. */
export const acknowledgementsOf = (runId: string, digest?: string): Query => ({
  text: `SELECT * FROM finding_acknowledgements WHERE run_id = $1 AND ($2::text IS NULL OR digest = $2) ORDER BY id`,
  values: [runId, digest ?? null],
});
