import type { Query } from '../db.js';

/**
 * What GET /v1/runs/:id shows of a run's long step (runs.progress). Never a
 * connection string or a file path: only names, counts and rates.
 */
export interface RunProgress {
  /** The running migration; null outside the migrate phase (backup, restore). */
  migration: string | null;
  /** 'backup', 'backup: verifying', 'restore', 'migrating', or the progress view's '<command>: <phase>' (e.g. 'create index: building index: scanning table'). */
  phase: string;
  done: number;
  total: number;
  /** What done and total count. */
  unit?: 'migrations' | 'blocks' | 'tuples' | 'bytes';
  etaSeconds: number | null;
  /** backup and restore: bytes per second since the tool started. */
  bytesPerSecond?: number;
  /**
   * backup: what total is. 'previous-backup': the database's size now times the
   * dump/database size ratio of the environment's last pg_dump backup;
   * 'database-size': pg_database_size, an upper bound of a compressed dump
   * (the ratio then runs low and the ETA high). 'backup: verifying' and
   * restore: 'file-size', exact.
   */
  totalBasis?: 'previous-backup' | 'database-size' | 'file-size';
  /** backup: pg_database_size of the target when the dump began. */
  databaseSizeBytes?: number;
}

/** What the migration backend `pid` is doing, from PostgreSQL's progress views (at most one row). */
export const statementProgress = (pid: number): Query => ({
  text: `SELECT 'create index' AS command, phase, blocks_done::float8 AS done, blocks_total::float8 AS total,
                tuples_done::float8 AS tuples_done, tuples_total::float8 AS tuples_total
         FROM pg_stat_progress_create_index WHERE pid = $1
         UNION ALL
         SELECT lower(command), phase, heap_blks_scanned::float8, heap_blks_total::float8,
                heap_tuples_written::float8, NULL::float8
         FROM pg_stat_progress_cluster WHERE pid = $1
         LIMIT 1`,
  values: [pid],
});

export const setRunProgress = (runId: string, progress: RunProgress | null): Query => ({
  text: 'UPDATE runs SET progress = $2::jsonb WHERE id = $1',
  values: [runId, progress === null ? null : JSON.stringify(progress)],
});

/** The target's size, read before a dump: the upper bound (or, calibrated, the base) of the dump's expected size. */
export const databaseSize = (): Query => ({
  text: 'SELECT pg_database_size(current_database())::float8 AS bytes',
  values: [],
});

/** The environment's newest pg_dump backup that knows the database size it was taken from. */
export const lastDumpCalibration = (environment: string): Query => ({
  text: `SELECT size_bytes::float8 AS dump_bytes, database_size_bytes::float8 AS database_bytes
         FROM backups
         WHERE environment = $1 AND method = 'pg_dump' AND verified_at IS NOT NULL
           AND size_bytes > 0 AND database_size_bytes > 0
         ORDER BY created_at DESC LIMIT 1`,
  values: [environment],
});
