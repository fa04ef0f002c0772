import type { Query } from '../db.js';

// Queries read at scrape time (/metrics) and by GET /v1/etl/health. Each one
// must stay cheap however large the history grows: they are index(-only)
// scans bounded by the number of environments and statuses, never a scan of
// the run history or of processed snapshots.

// ---------------------------------------------------------------- control database

/** Time boxes for one read: a slow database must not hold the scrape (or a pool connection) for long. */
export const setLocalTimeouts = (statementMs: number, lockMs: number): Query => ({
  text: `SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)`,
  values: [`${Math.max(1, Math.round(statementMs))}ms`, `${Math.max(1, Math.round(lockMs))}ms`],
});

/**
 * Runs per (environment, status) for every configured environment and every
 * status, zeros included: one index-only count per pair on
 * runs_environment_status_updated_at_idx (about 10 ms for 100,000 runs).
 */
export const runCountsByStatus = (environments: string[], statuses: readonly string[]): Query => ({
  text: `SELECT e.environment, s.status,
                (SELECT count(*) FROM runs r WHERE r.environment = e.environment AND r.status = s.status)::bigint AS count
         FROM unnest($1::text[]) AS e(environment) CROSS JOIN unnest($2::text[]) AS s(status)`,
  values: [environments, statuses],
});

/**
 * When each environment last had a run reach `succeeded`, from the transition
 * counters (control migration 1731000001000): a later rollback of that run
 * does not take it back. A primary-key probe per environment.
 */
export const lastSucceededRun = (environments: string[]): Query => ({
  text: `SELECT e.environment,
                (SELECT max(c.last_at) FROM run_transition_counts c WHERE c.environment = e.environment AND c.to_status = 'succeeded') AS at
         FROM unnest($1::text[]) AS e(environment)`,
  values: [environments],
});

export interface ActiveRunMetricRow {
  environment: string;
  status: string;
  /** Seconds since the run entered its current status. */
  age_seconds: number;
  /** Seconds past its scheduled_for (0 when not yet due or unscheduled). */
  overdue_seconds: number;
}

/** The (at most one per environment) active runs: how long they have been in their status, and how late. */
export const activeRunAges = (environments: string[], activeStatuses: readonly string[]): Query => ({
  text: `SELECT environment, status,
                extract(epoch FROM now() - updated_at)::float8 AS age_seconds,
                greatest(0, COALESCE(extract(epoch FROM now() - scheduled_for), 0))::float8 AS overdue_seconds
         FROM runs WHERE environment = ANY($1::text[]) AND status = ANY($2::text[])`,
  values: [environments, activeStatuses],
});

/** starforge_run_transitions_total, maintained by a trigger on run_events (control migration 1731000000300). */
export const transitionCounts = (environments: string[]): Query => ({
  text: `SELECT environment, from_status, to_status, count::float8 AS count
         FROM run_transition_counts WHERE environment = ANY($1::text[])`,
  values: [environments],
});

// ---------------------------------------------------------------- target databases (ETL)

export const etlTablesExist = (): Query => ({
  text: `SELECT to_regclass('public.hero_snapshots') IS NOT NULL AS snapshots,
                to_regclass('public.etl_errors') IS NOT NULL AS errors,
                to_regclass('public.etl_control') IS NOT NULL AS control`,
});

/** Counting stops here: past a million unprocessed snapshots the exact figure no longer changes what anyone does. */
export const BACKLOG_COUNT_CAP = 1_000_000;

/**
 * Backlog and the age of its oldest snapshot, both from the partial index
 * hero_snapshots_unprocessed_idx (only unprocessed rows are in it).
 */
export const etlBacklog = (): Query => ({
  text: `SELECT (SELECT count(*) FROM (SELECT 1 FROM hero_snapshots WHERE processed_at IS NULL LIMIT $1) AS b)::bigint AS backlog,
                (SELECT extract(epoch FROM now() - min(created_at)) FROM hero_snapshots WHERE processed_at IS NULL)::float8 AS oldest_age_seconds`,
  values: [BACKLOG_COUNT_CAP],
});

/** etl_errors rows newer than `seconds` (etl_errors_created_at_idx). */
export const etlErrorsSince = (seconds: number): Query => ({
  text: `SELECT count(*)::bigint AS count FROM etl_errors WHERE created_at > now() - make_interval(secs => $1)`,
  values: [seconds],
});

/**
 * Snapshots processed in the last `seconds`. processed_at has no index on the
 * StarForge schema, so this scans hero_snapshots: it is for the on-demand
 * health endpoint (time-boxed), never for /metrics, where the rate of
 * starforge_etl_snapshots_processed_total says the same.
 */
export const etlProcessedSince = (seconds: number): Query => ({
  text: `SELECT count(*)::bigint AS count FROM hero_snapshots WHERE processed_at > now() - make_interval(secs => $1)`,
  values: [seconds],
});

export const recentEtlErrors = (limit: number): Query => ({
  text: `SELECT id::text AS id, snapshot_id, error_type, message, created_at FROM etl_errors ORDER BY created_at DESC, id DESC LIMIT $1`,
  values: [limit],
});

/** The flag row, locked: pause/resume changes it in a transaction held open until the audit event is written. */
export const lockEtlControl = (): Query => ({ text: 'SELECT paused, reason, changed_by, changed_at FROM public.etl_control FOR UPDATE' });
