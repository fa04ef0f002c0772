import type { Query } from '../db.js';

export const connectionUsage = (): Query => ({
  text: `SELECT count(*)::int AS connections, current_setting('max_connections')::int AS max_connections FROM pg_stat_activity`,
});

export const longTransactionsOver = (seconds: number): Query => ({
  text: `SELECT pid, now() - xact_start AS duration, left(query, 200) AS query FROM pg_stat_activity
         WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND now() - xact_start > make_interval(secs => $1)
         ORDER BY duration DESC LIMIT 10`,
  values: [seconds],
});

export const existingTables = (names: string[]): Query => ({
  text: `SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL`,
  values: [names],
});

export const existingIndexes = (names: string[]): Query => ({
  text: `SELECT schemaname || '.' || indexname AS name, indexdef FROM pg_indexes WHERE schemaname || '.' || indexname = ANY($1::text[])`,
  values: [names],
});

export const invalidIndexList = (): Query => ({
  text: `SELECT n.nspname || '.' || c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid ORDER BY 1`,
});

export const etlErrorsSince = (since: Date, excludeSnapshot: string | null): Query => ({
  text: `SELECT id, snapshot_id, error_type, message, created_at FROM etl_errors
         WHERE created_at >= $1 AND ($2::uuid IS NULL OR snapshot_id IS DISTINCT FROM $2) ORDER BY created_at DESC LIMIT 20`,
  values: [since, excludeSnapshot],
});

export const tableExists = (name: string): Query => ({ text: 'SELECT to_regclass($1) IS NOT NULL AS exists', values: [name] });

// The smoke ETL: one marked snapshot, processed, checked and removed again.
export const insertSmokeSnapshot = (userId: string, raw: object): Query => ({
  text: 'INSERT INTO hero_snapshots (user_id, raw) VALUES ($1, $2) RETURNING id',
  values: [userId, JSON.stringify(raw)],
});

export const smokeSnapshotState = (id: string): Query => ({
  text: 'SELECT processed_at, error_count, last_error FROM hero_snapshots WHERE id = $1',
  values: [id],
});

export const smokeSummary = (userId: string): Query => ({
  text: 'SELECT display_name, level, power, hero_count, last_snapshot_id FROM user_profile_summary WHERE user_id = $1',
  values: [userId],
});

export const smokeTroops = (userId: string): Query => ({
  text: 'SELECT troop_type, tier, count FROM user_troops WHERE user_id = $1 ORDER BY troop_type, tier',
  values: [userId],
});

export const deleteSmokeRows = (id: string, userId: string): Query => ({
  text: `WITH e AS (DELETE FROM etl_errors WHERE snapshot_id = $1),
              t AS (DELETE FROM user_troops WHERE user_id = $2),
              s AS (DELETE FROM user_profile_summary WHERE user_id = $2)
         DELETE FROM hero_snapshots WHERE id = $1`,
  values: [id, userId],
});

/** ETL activity in a time range: processed snapshots and recorded failures. */
export const etlActivity = (from: Date, to: Date): Query => ({
  text: `SELECT (SELECT count(*) FROM hero_snapshots WHERE processed_at >= $1 AND processed_at < $2 AND error_count = 0)::int AS processed,
                (SELECT count(*) FROM etl_errors WHERE created_at >= $1 AND created_at < $2 AND error_type IS DISTINCT FROM 'invalid_snapshot')::int AS failed,
                (SELECT count(*) FROM etl_errors WHERE created_at >= $1 AND created_at < $2 AND error_type = 'invalid_snapshot')::int AS invalid,
                (SELECT count(*) FROM hero_snapshots WHERE processed_at IS NULL)::int AS backlog`,
  values: [from, to],
});
