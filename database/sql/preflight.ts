import type { Query } from '../db.js';

export const REHEARSAL_DB_PREFIX = 'sf_rehearsal_';
/** `sfm lint`'s throw-away databases (services/preflight/lint-files/rehearse.ts). */
export const LINT_DB_PREFIX = 'sf_lint_';

export const listRehearsalDatabases = (): Query => ({
  text: `SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname`,
  values: [`${REHEARSAL_DB_PREFIX.replace(/_/g, '\\_')}%`],
});

export const userTables = (): Query => ({
  // Temporary tables are a session's, not the schema's: verification could never find them on the target.
  text: `SELECT schemaname || '.' || tablename AS name FROM pg_tables
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg\\_temp\\_%' ORDER BY 1`,
});

export const tableStats = (qualifiedNames: string[]): Query => ({
  text: `SELECT lower(n.nspname || '.' || c.relname) AS name, GREATEST(c.reltuples, 0)::bigint AS rows,
                pg_total_relation_size(c.oid) AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm') AND lower(n.nspname || '.' || c.relname) = ANY($1::text[])`,
  values: [qualifiedNames],
});

export const serverFacts = (): Query => ({
  text: `SELECT current_setting('server_version') AS version, current_setting('server_version_num')::int AS version_num,
                current_setting('max_connections')::int AS max_connections,
                (SELECT count(*) FROM pg_stat_activity)::int AS connections,
                current_user AS role, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
                has_database_privilege(current_user, current_database(), 'CREATE') AS can_create`,
});

export const longTransactions = (olderThanSeconds: number): Query => ({
  text: `SELECT pid, usename, state, EXTRACT(EPOCH FROM now() - xact_start)::int AS seconds, left(query, 200) AS query
         FROM pg_stat_activity
         WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND now() - xact_start > make_interval(secs => $1)
         ORDER BY xact_start LIMIT 20`,
  values: [olderThanSeconds],
});

export const extensionsInfo = (names: string[]): Query => ({
  text: `SELECT a.name, a.installed_version IS NOT NULL AS installed,
                COALESCE(bool_or(v.trusted), false) AS trusted
         FROM pg_available_extensions a LEFT JOIN pg_available_extension_versions v ON v.name = a.name
         WHERE a.name = ANY($1::text[]) GROUP BY a.name, a.installed_version`,
  values: [names],
});

export const ledgerFor = (environment: string): Query => ({
  text: 'SELECT name, sha256, applied_at FROM migration_ledger WHERE environment = $1',
  values: [environment],
});

export const userIndexes = (): Query => ({
  text: `SELECT schemaname || '.' || indexname AS name FROM pg_indexes
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg\\_temp\\_%' ORDER BY 1`,
});

// Identifiers are escaped by the caller's client.escapeIdentifier (DDL takes no parameters).
export const createDatabase = (escapedName: string): Query => ({ text: `CREATE DATABASE ${escapedName}` });

/**
 * A throw-away copy's commits need not wait for the WAL to reach disk: every
 * session on it (each migration's COMMIT) then skips the flush. Nothing a
 * migration does behaves differently; a crash loses only the copy, which is
 * swept anyway.
 */
export const throwAwayDatabaseSettings = (escapedName: string): Query => ({ text: `ALTER DATABASE ${escapedName} SET synchronous_commit = off` });

export const dropDatabase = (escapedName: string): Query => ({ text: `DROP DATABASE IF EXISTS ${escapedName} WITH (FORCE)` });
/** Refused while anyone is connected to it. */
export const dropDatabaseUnforced = (escapedName: string): Query => ({ text: `DROP DATABASE IF EXISTS ${escapedName}` });

export const insertMigrationHistory = (escapedTable: string, name: string, runOn: string): Query => ({
  text: `INSERT INTO ${escapedTable} (name, run_on) VALUES ($1, $2)`,
  values: [name, runOn],
});

/**
 * Whether the database holds anything a schema dump would copy: an object created after initdb (an oid from
 * FirstNormalObjectId up in any catalog of this database, each read through query_to_xml in the one query) or a
 * changed comment on the public schema. A catalog this role cannot read counts as holding something.
 */
export const holdsSchemaObjects = (): Query => ({
  text: `SELECT coalesce(bool_or(CASE WHEN has_table_privilege(c.oid, 'SELECT')
                THEN (xpath('/row/x/text()', query_to_xml(format('SELECT EXISTS (SELECT 1 FROM pg_catalog.%I WHERE oid >= 16384) AS x', c.relname), false, true, '')))[1]::text::boolean
                ELSE true END), true)
           OR obj_description(to_regnamespace('public')::oid, 'pg_namespace') IS DISTINCT FROM 'standard public schema' AS holds
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'oid' AND NOT a.attisdropped
         WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r' AND NOT c.relisshared`,
});
