import type { Query } from '../db.js';

// What preflight needs to tell whether the next pg_dump fits on the backup disk.

/**
 * Bytes of table data pg_dump reads (heap and TOAST of every ordinary table
 * and materialized view outside the system schemas; indexes are dumped as
 * definitions only). An upper bound for a custom-format dump, which compresses.
 */
export const tableDataBytes = (): Query => ({
  text: `SELECT COALESCE(sum(pg_table_size(c.oid)), 0)::bigint AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'`,
});

/** The size of the environment's most recent verified pg_dump backup (null when there is none). */
export const lastDumpSize = (environment: string): Query => ({
  text: `SELECT size_bytes FROM backups
         WHERE environment = $1 AND method = 'pg_dump' AND verified_at IS NOT NULL AND size_bytes IS NOT NULL
         ORDER BY created_at DESC LIMIT 1`,
  values: [environment],
});
