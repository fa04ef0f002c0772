import type { Query } from '../db.js';

// What recovery asks the control database and the targets: the child
// processes a run started, who holds a run's apply lock, which target
// sessions belong to a run, and what a restore changed.

export interface NewProcess {
  runId: string;
  phase: string;
  command: string;
  host: string;
  pid: number;
  pgid: number;
  startTicks: number | null;
  applicationName: string | null;
  owner: string | null;
}

export const insertProcess = (p: NewProcess): Query => ({
  text: `INSERT INTO run_processes (run_id, phase, command, host, pid, pgid, start_ticks, application_name, owner)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
  values: [p.runId, p.phase, p.command, p.host, p.pid, p.pgid, p.startTicks, p.applicationName, p.owner],
});

export const endProcess = (id: string, note: string): Query => ({
  text: 'UPDATE run_processes SET ended_at = clock_timestamp(), end_note = $2 WHERE id = $1 AND ended_at IS NULL',
  values: [id, note],
});

export interface ProcessRow {
  id: string;
  phase: string;
  command: string;
  host: string;
  pid: number;
  pgid: number;
  start_ticks: string | null;
  application_name: string | null;
  owner: string | null;
  started_at: Date;
}

export const openProcessesOfRun = (runId: string): Query => ({
  text: `SELECT id, phase, command, host, pid, pgid, start_ticks, application_name, owner, started_at
         FROM run_processes WHERE run_id = $1 AND ended_at IS NULL ORDER BY id`,
  values: [runId],
});

/**
 * The control-database sessions holding a run's apply lock (two-int advisory
 * form: class, hashtext(run id)); a stale holder is a process cut off from
 * the control database whose session the server has not noticed is gone.
 */
export const applyLockHolders = (lockClass: number, runId: string): Query => ({
  text: `SELECT l.pid, a.application_name, a.backend_start, a.state_change
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid AND l.objid = hashtext($2)::oid
           AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  values: [lockClass, runId],
});

/** Whether the run's lease lapsed more than `graceMs` ago (an owner that long silent fenced itself). */
export const leaseLapsedFor = (runId: string, graceMs: number): Query => ({
  text: `SELECT lease_expires_at IS NULL OR lease_expires_at < clock_timestamp() - make_interval(secs => $2::double precision / 1000) AS lapsed
         FROM runs WHERE id = $1`,
  values: [runId, graceMs],
});

/** Takes over the lease of an in-flight run whose owner is gone (the caller holds its apply lock). */
export const takeOverLease = (runId: string, statuses: readonly string[], owner: string, leaseMs: number): Query => ({
  text: `UPDATE runs SET lease_owner = $3, lease_expires_at = clock_timestamp() + make_interval(secs => $4::double precision / 1000)
         WHERE id = $1 AND status = ANY($2::text[])
         RETURNING id, status`,
  values: [runId, statuses, owner, leaseMs],
});

/** A run's sessions on its target: application_name starforge-run-<id>-<phase>, plus legacy names an older version used. */
export const runSessions = (runId: string, legacyNames: readonly string[]): Query => ({
  text: `SELECT pid, application_name, state, left(query, 200) AS query, (now() - query_start)::text AS running_for
         FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND (application_name LIKE 'starforge-run-' || $1 || '-%' OR application_name = ANY($2::text[]))
         ORDER BY backend_start`,
  values: [runId, legacyNames],
});

/** Object ids of these relations ('schema.table'), null for the ones that do not exist. */
export const relationOids = (names: readonly string[]): Query => ({
  text: `SELECT n AS name, to_regclass(n)::oid::bigint AS oid FROM unnest($1::text[]) AS n ORDER BY n`,
  values: [names],
});

/** The backup a restore puts back: the preferred one (taken before any of the run's migrations landed), else the newest verified. */
export const restoreBackupOfRun = (runId: string, preferId: string | null): Query => ({
  text: `SELECT * FROM backups WHERE run_id = $1 AND verified_at IS NOT NULL
         ORDER BY (id = $2) DESC NULLS LAST, created_at DESC LIMIT 1`,
  values: [runId, preferId],
});
