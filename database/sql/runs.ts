import type { Query } from '../db.js';
import type { RunProgress } from './progress.js';

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
  /** The running step's progress (services/apply/progress.ts); null when none runs. */
  progress?: RunProgress | null;
  /** apply_state.watch: the post-apply watch's window and, once it ended, its verdict. */
  watch?: { window?: { startedAt: string; endsAt: string }; verdict?: 'healthy' | 'degraded'; endedAt?: string; endedEarly?: boolean } | null;
  approvals: Array<{ subject: string; role: string; decision: string; comment: string; digest: string; at: string }>;
  backup: { id: string; method: string; size_bytes: number | null; sha256: string | null; verified_at: string | null; created_at: string } | null;
}

// A run's approvals (oldest first) and latest backup, as columns of a query on `runs r`.
const RUN_RELATIONS = `
    COALESCE((SELECT jsonb_agg(jsonb_build_object('subject', a.subject, 'role', a.role, 'decision', a.decision,
                'comment', a.comment, 'digest', a.digest, 'at', a.created_at) ORDER BY a.id)
              FROM run_approvals a WHERE a.run_id = r.id), '[]'::jsonb) AS approvals,
    (SELECT jsonb_build_object('id', b.id, 'method', b.method, 'size_bytes', b.size_bytes, 'sha256', b.sha256,
              'verified_at', b.verified_at, 'created_at', b.created_at)
       FROM backups b WHERE b.run_id = r.id ORDER BY b.created_at DESC LIMIT 1) AS backup`;

// A run with its approvals and latest backup, in one round trip: every column,
// for the services that also read apply_state and the lease.
const RUN_SELECT = `SELECT r.*, ${RUN_RELATIONS} FROM runs r`;

// The same, with only the columns of RunRow: what the API presents. The
// explicit list keeps the result type fixed when a migration adds a column,
// which the named prepared statements below need, and leaves apply_state
// (which can be large) in the database.
const RUN_VIEW_SELECT = `
  SELECT r.id, r.seq, r.environment, r.status, r.description, r.ticket, r.requested_by, r.target_to, r.schedule,
    r.scheduled_for, r.migrations, r.digest, r.required_approvals, r.error, r.created_at, r.updated_at, r.progress, r.apply_state->'watch' AS watch, ${RUN_RELATIONS}
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

// The API's hot reads are named prepared statements: planning this query costs
// two to three times executing it.
const SELECT_RUN_VIEW = `${RUN_VIEW_SELECT} WHERE r.id = $1`;

/** The run as GET /v1/runs/:id shows it (RunRow's columns only). */
export const selectRunView = (id: string): Query => ({ name: 'runs.select-view', text: SELECT_RUN_VIEW, values: [id] });

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

/**
 * A page of runs as GET /v1/runs shows them, newest first. The text names only
 * the filters given. Unfiltered pages (the first and those after a cursor) are
 * named prepared statements; a page filtered by environment or status is
 * planned for its values each time, because a plan cached for any value would
 * walk the seq index past every run of other values (a rare status on a long
 * history) instead of using the (status, seq) or (environment, seq) index.
 */
export const listRuns = (f: ListRunsFilter): Query => {
  const values: unknown[] = [];
  const where: string[] = [];
  if (f.environment !== undefined) where.push(`r.environment = $${values.push(f.environment)}`);
  if (f.status !== undefined) where.push(`r.status = $${values.push(f.status)}`);
  const filtered = where.length > 0;
  if (f.beforeSeq !== undefined) where.push(`r.seq < $${values.push(f.beforeSeq)}::bigint`);
  const text = `${RUN_VIEW_SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY r.seq DESC LIMIT $${values.push(f.limit)}`;
  if (filtered) return { text, values };
  return { name: f.beforeSeq === undefined ? 'runs.list-view' : 'runs.list-view-after', text, values };
};

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

export const selectRunStatus = (id: string): Query => ({ text: 'SELECT status FROM runs WHERE id = $1', values: [id] });
