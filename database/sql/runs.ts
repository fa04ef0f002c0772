import type { Query } from '../db.js';

export interface RunRow {
  id: string;
  seq: string;
  environment: string;
  status: string;
  description: string;
  ticket: string | null;
  requested_by: string;
  target_to: string | null;
  schedule: { mode: string; at?: string };
  scheduled_for: Date | null;
  migrations: Array<{ name: string; sha256: string }>;
  digest: string;
  required_approvals: string[];
  error: { code: string; message: string; phase?: string | null; migration?: string | null; statement?: string | null; sqlState?: string | null; partial?: string[] | null } | null;
  created_at: Date;
  updated_at: Date;
  approvals: Array<{ subject: string; role: string; decision: string; comment: string; digest: string; at: string }>;
  backup: { id: string; method: string; size_bytes: number | null; sha256: string | null; verified_at: string | null; created_at: string } | null;
}

// A run with its approvals and latest backup, in one round trip.
const RUN_SELECT = `
  SELECT r.*,
    COALESCE((SELECT jsonb_agg(jsonb_build_object('subject', a.subject, 'role', a.role, 'decision', a.decision,
                'comment', a.comment, 'digest', a.digest, 'at', a.created_at) ORDER BY a.id)
              FROM run_approvals a WHERE a.run_id = r.id), '[]'::jsonb) AS approvals,
    (SELECT jsonb_build_object('id', b.id, 'method', b.method, 'size_bytes', b.size_bytes, 'sha256', b.sha256,
              'verified_at', b.verified_at, 'created_at', b.created_at)
       FROM backups b WHERE b.run_id = r.id ORDER BY b.created_at DESC LIMIT 1) AS backup
  FROM runs r`;

export interface InsertRun {
  environment: string;
  status: string;
  description: string;
  ticket: string | null;
  requestedBy: string;
  to: string | null;
  schedule: object;
  scheduledFor: Date | null;
  migrations: object[];
  digest: string;
  requiredApprovals: string[];
}

export const insertRun = (r: InsertRun): Query => ({
  text: `INSERT INTO runs (environment, status, description, ticket, requested_by, target_to, schedule, scheduled_for,
                           migrations, digest, required_approvals)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
  values: [r.environment, r.status, r.description, r.ticket, r.requestedBy, r.to, JSON.stringify(r.schedule), r.scheduledFor,
    JSON.stringify(r.migrations), r.digest, r.requiredApprovals],
});

export const selectRun = (id: string): Query => ({ text: `${RUN_SELECT} WHERE r.id = $1`, values: [id] });

export const lockRun = (id: string): Query => ({ text: 'SELECT id, environment, status, requested_by, digest, required_approvals, target_to FROM runs WHERE id = $1 FOR UPDATE', values: [id] });

export const activeRunFor = (environment: string, activeStatuses: readonly string[]): Query => ({
  text: 'SELECT id, status FROM runs WHERE environment = $1 AND status = ANY($2::text[]) LIMIT 1',
  values: [environment, activeStatuses],
});

export interface ListRunsFilter {
  environment?: string;
  status?: string;
  beforeSeq?: string;
  limit: number;
}

export const listRuns = (f: ListRunsFilter): Query => ({
  text: `${RUN_SELECT}
         WHERE ($1::text IS NULL OR r.environment = $1) AND ($2::text IS NULL OR r.status = $2)
           AND ($3::bigint IS NULL OR r.seq < $3)
         ORDER BY r.seq DESC LIMIT $4`,
  values: [f.environment ?? null, f.status ?? null, f.beforeSeq ?? null, f.limit],
});

export interface RunPatch {
  migrations?: object[];
  digest?: string;
  scheduledFor?: Date | null;
  error?: object | null;
}

/** Sets the status and, where given, other columns; `undefined` leaves a column as it is. */
export const updateRunStatus = (id: string, status: string, patch: RunPatch): Query => ({
  text: `UPDATE runs SET status = $2, updated_at = now(),
           migrations = COALESCE($3::jsonb, migrations),
           digest = COALESCE($4, digest),
           scheduled_for = CASE WHEN $5::boolean THEN $6::timestamptz ELSE scheduled_for END,
           error = CASE WHEN $7::boolean THEN $8::jsonb ELSE error END
         WHERE id = $1`,
  values: [id, status, patch.migrations ? JSON.stringify(patch.migrations) : null, patch.digest ?? null,
    patch.scheduledFor !== undefined, patch.scheduledFor ?? null, patch.error !== undefined,
    patch.error === undefined || patch.error === null ? null : JSON.stringify(patch.error)],
});

export const runsInStatus = (status: string): Query => ({
  text: 'SELECT id FROM runs WHERE status = $1 ORDER BY seq',
  values: [status],
});
