import type { Query } from '../db.js';

// The scheduler's questions to the control database. Which replica applies a
// run is decided here (row locks, SKIP LOCKED, leases), never by a timer.

export interface ScheduleRow {
  schedule: { mode: 'window' | 'now' | 'at'; at?: string };
  scheduled_for: Date | null;
}

export const scheduleOfRun = (runId: string): Query => ({
  text: 'SELECT schedule, scheduled_for FROM runs WHERE id = $1',
  values: [runId],
});

/** The latest preflight's estimate of the apply time (null without an impact section). */
export const preflightEstimate = (runId: string): Query => ({
  text: `SELECT (body #>> '{impact,totalEstimatedMs}')::numeric AS estimated_ms
         FROM run_reports WHERE run_id = $1 AND kind = 'preflight' ORDER BY id DESC LIMIT 1`,
  values: [runId],
});

/** Scheduled runs due at `now`, oldest first (candidates: claiming happens per run below). */
export const dueRuns = (now: Date, limit: number): Query => ({
  text: `SELECT id FROM runs WHERE status = 'scheduled' AND scheduled_for <= $1 ORDER BY scheduled_for, seq LIMIT $2`,
  values: [now, limit],
});

/**
 * Claims one due run: the row lock keeps every other replica's claim (and
 * any approval, cancel or API apply) out until the claiming transaction ends;
 * a row another transaction holds is skipped rather than waited for.
 */
export const claimDueRun = (runId: string, now: Date): Query => ({
  text: `SELECT id, environment, status, requested_by, digest, required_approvals, target_to, schedule, scheduled_for
         FROM runs WHERE id = $1 AND status = 'scheduled' AND scheduled_for <= $2
         FOR UPDATE SKIP LOCKED`,
  values: [runId, now],
});

export const rescheduleRun = (runId: string, scheduledFor: Date): Query => ({
  text: 'UPDATE runs SET scheduled_for = $2, updated_at = now() WHERE id = $1',
  values: [runId, scheduledFor],
});

export const takeLease = (runId: string, owner: string, leaseMs: number): Query => ({
  text: `UPDATE runs SET lease_owner = $2, lease_expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000)
         WHERE id = $1`,
  values: [runId, owner, leaseMs],
});

/** Renews the lease while its owner still holds it; 0 rows = the lease was lost. */
export const renewLease = (runId: string, owner: string, leaseMs: number): Query => ({
  text: `UPDATE runs SET lease_expires_at = clock_timestamp() + make_interval(secs => $3::double precision / 1000)
         WHERE id = $1 AND lease_owner = $2`,
  values: [runId, owner, leaseMs],
});

export const dropLease = (runId: string, owner: string): Query => ({
  text: 'UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2',
  values: [runId, owner],
});

export interface InFlightRow {
  id: string;
  status: string;
  lease_owner: string | null;
  lease_expires_at: Date | null;
}

/** In-flight runs; with `expiredOnly`, just those whose lease lapsed (or that never had one). */
export const inFlightRuns = (statuses: readonly string[], expiredOnly: boolean): Query => ({
  text: `SELECT id, status, lease_owner, lease_expires_at FROM runs
         WHERE status = ANY($1::text[]) AND (NOT $2::boolean OR lease_expires_at IS NULL OR lease_expires_at < clock_timestamp())
         ORDER BY seq`,
  values: [statuses, expiredOnly],
});

/** Sessions on a target opened by an apply (application_name set by migrate() and the worker pause), oldest first. */
export const applySessions = (applicationNames: readonly string[]): Query => ({
  text: `SELECT pid, state, left(query, 200) AS query, (now() - query_start)::text AS running_for
         FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = ANY($1::text[]) AND pid <> pg_backend_pid()
         ORDER BY backend_start`,
  values: [applicationNames],
});

export const terminateBackend = (pid: number): Query => ({
  text: 'SELECT pg_terminate_backend($1) AS terminated',
  values: [pid],
});

export const backendAlive = (pid: number): Query => ({
  text: 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1',
  values: [pid],
});

/** Takes a run's lease from whoever holds it: their next renewal finds 0 rows and they stop (an early end of the watch). */
export const revokeLease = (runId: string): Query => ({
  text: 'UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1',
  values: [runId],
});
