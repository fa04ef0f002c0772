import pg from 'pg';
import type { Query } from '../db.js';

// What preflight reads to estimate how long an apply takes on the target, and
// the measured history (control database) it calibrates with. Every read of
// the target here is read-only; the timed samples run in a READ ONLY
// transaction with their own statement_timeout.

/** Per relation named 'schema.name': its kind, sizes, the planner's and the statistics collector's row counts. */
export const relationFacts = (qualifiedNames: string[]): Query => ({
  text: `SELECT lower(n.nspname || '.' || c.relname) AS name, c.oid::int AS oid, n.nspname AS schema, c.relname AS relname, c.relkind,
                pg_relation_size(c.oid)::float8 AS heap_bytes,
                (pg_table_size(c.oid) - pg_relation_size(c.oid))::float8 AS toast_bytes,
                pg_total_relation_size(c.oid)::float8 AS total_bytes,
                c.reltuples::float8 AS reltuples, s.n_live_tup::float8 AS n_live_tup, s.n_mod_since_analyze::float8 AS n_mod_since_analyze,
                ix.indrelid::int AS index_of, lower(tn.nspname || '.' || t.relname) AS index_table
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
         LEFT JOIN pg_index ix ON ix.indexrelid = c.oid
         LEFT JOIN pg_class t ON t.oid = ix.indrelid LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
         WHERE lower(n.nspname || '.' || c.relname) = ANY($1::text[])`,
  values: [qualifiedNames],
});

/**
 * The block size and server version the samples scale with, and what decides
 * how many parallel workers an index build gets (plan_create_index_workers):
 * maintenance_work_mem in kB, min_parallel_table_scan_size in blocks.
 */
export const sampleSettings = (): Query => ({
  text: `SELECT current_setting('block_size')::int AS block_size, current_setting('server_version_num')::int AS version_num,
                current_setting('max_parallel_maintenance_workers')::int AS max_parallel_maintenance_workers,
                (SELECT setting::float8 FROM pg_settings WHERE name = 'maintenance_work_mem') AS maintenance_work_mem_kb,
                (SELECT setting::float8 FROM pg_settings WHERE name = 'min_parallel_table_scan_size') AS min_parallel_table_scan_blocks`,
});

/** Live columns of a table (for validating index keys before they go into a sample query). */
export const tableColumns = (oid: number): Query => ({
  text: 'SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum',
  values: [oid],
});

/** The key columns of each existing index of a table (expression keys left out): what a table rewrite rebuilds. */
export const tableIndexKeys = (oid: number): Query => ({
  text: `SELECT ic.relname AS name, am.amname AS method,
                COALESCE(array_agg(a.attname ORDER BY k.ord) FILTER (WHERE a.attname IS NOT NULL), '{}') AS columns
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
         LEFT JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) ON k.ord <= i.indnkeyatts
         LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
         WHERE i.indrelid = $1 GROUP BY ic.relname, am.amname ORDER BY ic.relname`,
  values: [oid],
});

export const beginReadOnly = (): Query => ({ text: 'BEGIN READ ONLY' });
export const commit = (): Query => ({ text: 'COMMIT' });
export const rollback = (): Query => ({ text: 'ROLLBACK' });

/** Bounds for the timed samples: they wait for no lock, run single-threaded and sort in memory. */
export const sampleLimits = (statementTimeoutMs: number, lockTimeoutMs: number, workMem: string): Query => ({
  text: `SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true), set_config('work_mem', $3, true),
                set_config('max_parallel_workers_per_gather', '0', true)`,
  values: [`${statementTimeoutMs}ms`, `${lockTimeoutMs}ms`, workMem],
});

function ident(schema: string, relname: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(relname)}`;
}

/**
 * The first `pages` pages of a table: a TID range scan (PostgreSQL 14+) reads
 * just them, sequentially; before 14 block sampling reads about as many.
 */
function samplePredicate(pages: number, totalPages: number, versionNum: number): { from: string; where: string } {
  const n = Math.max(1, Math.floor(pages));
  if (versionNum >= 140000) return { from: '', where: ` WHERE ctid < '(${n},0)'::tid` };
  const percent = Math.min(100, (100 * n) / Math.max(totalPages, 1));
  return { from: ` TABLESAMPLE SYSTEM (${percent.toFixed(6)}) REPEATABLE (1)`, where: '' };
}

/** Reads the sampled pages and counts their live rows. */
export const sampleScan = (schema: string, relname: string, pages: number, totalPages: number, versionNum: number): Query => {
  const p = samplePredicate(pages, totalPages, versionNum);
  return { text: `SELECT count(*)::float8 AS n FROM ${ident(schema, relname)}${p.from}${p.where}` };
};

/** Sorts the sampled rows by `columns` (validated column names): an index build's sort, in miniature. */
export const sampleSort = (schema: string, relname: string, columns: string[], pages: number, totalPages: number, versionNum: number): Query => {
  const p = samplePredicate(pages, totalPages, versionNum);
  const keys = columns.map((c) => pg.escapeIdentifier(c)).join(', ');
  return { text: `SELECT count(*)::float8 AS n FROM (SELECT ${keys} FROM ${ident(schema, relname)}${p.from}${p.where} ORDER BY ${keys}) s` };
};

/** The average stored width of the keys in the sampled rows: index entries grow with it. */
export const sampleKeyWidth = (schema: string, relname: string, columns: string[], pages: number, totalPages: number, versionNum: number): Query => {
  const p = samplePredicate(pages, totalPages, versionNum);
  const width = columns.map((c) => `COALESCE(pg_column_size(${pg.escapeIdentifier(c)}), 0)`).join(' + ');
  return { text: `SELECT COALESCE(avg(${width}), 0)::float8 AS n FROM ${ident(schema, relname)}${p.from}${p.where}` };
};

/** An exact row count that stops after `limit` rows (so a huge table costs at most that many). */
export const boundedCount = (schema: string, relname: string, limit: number): Query => ({
  text: `SELECT count(*)::float8 AS n FROM (SELECT 1 FROM ${ident(schema, relname)} LIMIT $1) s`,
  values: [limit],
});

export const databaseSize = (): Query => ({ text: 'SELECT pg_database_size(current_database())::float8 AS bytes' });

// ------------------------------------------------------------ history (control database)

/**
 * Records a migration's measured duration beside what the run's latest
 * preflight estimated for it (nothing when that preflight gave no estimate).
 */
export const recordMigrationTiming = (environment: string, runId: string, migration: string, measuredMs: number): Query => ({
  text: `INSERT INTO migration_timings (run_id, migration, environment, fixed_ms, work_ms, estimated_ms, measured_ms)
         SELECT $2, $3, $1, (m->>'rehearsalMs')::numeric, (m->>'workMs')::numeric, (m->>'estimatedMs')::numeric, $4
         FROM (SELECT body FROM run_reports WHERE run_id = $2 AND kind = 'preflight' ORDER BY id DESC LIMIT 1) r
         CROSS JOIN LATERAL jsonb_array_elements(r.body #> '{impact,migrations}') m
         WHERE m->>'migration' = $3
         ON CONFLICT (run_id, migration) DO UPDATE SET measured_ms = EXCLUDED.measured_ms, recorded_at = now()`,
  values: [environment, runId, migration, measuredMs],
});

/**
 * Records how long a backup took (created_at is its start, verified_at the
 * end of its verification) and the database size the run's preflight saw.
 */
export const recordBackupTiming = (backupId: string, runId: string): Query => ({
  text: `INSERT INTO backup_timings (backup_id, environment, method, database_bytes, duration_ms)
         SELECT b.id, b.environment, b.method,
                (SELECT (body #>> '{impact,backup,databaseBytes}')::bigint FROM run_reports WHERE run_id = $2 AND kind = 'preflight' ORDER BY id DESC LIMIT 1),
                EXTRACT(EPOCH FROM (b.verified_at - b.created_at)) * 1000
         FROM backups b WHERE b.id = $1 AND b.verified_at IS NOT NULL
         ON CONFLICT (backup_id) DO NOTHING`,
  values: [backupId, runId],
});

/** The environment's latest measured migrations whose size-dependent work was predicted. */
export const recentMigrationTimings = (environment: string, minWorkMs: number, limit: number): Query => ({
  text: `SELECT fixed_ms::float8 AS fixed_ms, work_ms::float8 AS work_ms, measured_ms::float8 AS measured_ms
         FROM migration_timings WHERE environment = $1 AND work_ms >= $2 ORDER BY recorded_at DESC LIMIT $3`,
  values: [environment, minWorkMs, limit],
});

/** The environment's latest measured backups of one method. */
export const recentBackupTimings = (environment: string, method: string, limit: number): Query => ({
  text: `SELECT database_bytes::float8 AS database_bytes, duration_ms::float8 AS duration_ms
         FROM backup_timings WHERE environment = $1 AND method = $2 AND duration_ms > 0 ORDER BY recorded_at DESC LIMIT $3`,
  values: [environment, method, limit],
});
