import type { Query } from '../db.js';

// node-pg-migrate's own lock id: holding it keeps its CLI (and other tools
// using it) from migrating the same database at the same time.
export const PG_MIGRATE_LOCK_ID = 7241865325823964;

export const setSessionTimeouts = (lockTimeoutMs: number, statementTimeoutMs: number): Query => ({
  text: `SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)`,
  values: [`${lockTimeoutMs}ms`, `${statementTimeoutMs}ms`],
});

export const tryMigrationLock = (): Query => ({ text: 'SELECT pg_try_advisory_lock($1) AS locked', values: [PG_MIGRATE_LOCK_ID] });

export const releaseMigrationLock = (): Query => ({ text: 'SELECT pg_advisory_unlock($1) AS released', values: [PG_MIGRATE_LOCK_ID] });

export const invalidIndexes = (): Query => ({
  text: `SELECT c.relname AS index, t.relname AS "table"
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
});

/** DROP TABLE for identifiers already escaped by the caller's client.escapeIdentifier. */
export const dropTable = (escapedSchema: string, escapedTable: string): Query => ({
  text: `DROP TABLE IF EXISTS ${escapedSchema}.${escapedTable} CASCADE`,
});
