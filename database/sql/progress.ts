import type { Query } from '../db.js';

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

export const setRunProgress = (runId: string, progress: object | null): Query => ({
  text: 'UPDATE runs SET progress = $2::jsonb WHERE id = $1',
  values: [runId, progress === null ? null : JSON.stringify(progress)],
});
