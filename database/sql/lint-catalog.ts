import type { Query } from '../db.js';

// What the linter asks a database's catalog before a migration: the facts a
// statement's text cannot tell (a column's current type, a validated NOT NULL
// check, a function's volatility, which relations are materialized views).
// Names are lower-cased, as the linter folds parsed names.

const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;

const COLUMN_TYPES = `SELECT c.oid::int AS rel, lower(n.nspname || '.' || c.relname || '.' || a.attname) AS key, format_type(a.atttypid, a.atttypmod) AS type
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND ${USER_SCHEMAS}`;

const CHECK_CONSTRAINTS = `SELECT c.oid::int AS rel, lower(n.nspname || '.' || c.relname) AS "table", lower(co.conname) AS name, co.convalidated AS validated,
                pg_get_constraintdef(co.oid) AS definition
         FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE co.contype = 'c' AND ${USER_SCHEMAS}`;

// Overloads share a name; the linter keeps the most volatile of them.
const FUNCTIONS = (where: string) => `SELECT lower(n.nspname) AS schema, lower(p.proname) AS name, p.provolatile AS volatility
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${where}`;
const SYSTEM_SCHEMAS = `n.nspname IN ('pg_catalog', 'information_schema')`;

const MATERIALIZED_VIEWS = `SELECT lower(schemaname || '.' || matviewname) AS name FROM pg_matviews`;

/** The built-in functions' volatility: the same for the whole life of a server, read once. */
export const lintSystemFunctionVolatility = (): Query => ({ text: FUNCTIONS(SYSTEM_SCHEMAS) });

// $1 null: every table; else those in $1 and those not in $2.
const RELATION_FILTER = `($1::oid[] IS NULL OR c.oid = ANY($1::oid[]) OR NOT (c.oid = ANY($2::oid[])))`;

/**
 * Everything else the linter asks, in two parts (the rehearsal asks before every migration).
 * lintRelationFacts: column types and CHECK constraints of the tables in
 * `stale` (oids whose fingerprint signature moved) and of every table with no
 * signature in `signed` (none should lack one; such a table is read every
 * time), each row with its table's oid; null for both reads every table.
 */
export const lintRelationFacts = (stale: number[] | null, signed: number[] | null): Query => ({
  text: `SELECT (SELECT coalesce(json_agg(x), '[]') FROM (${COLUMN_TYPES} AND ${RELATION_FILTER}) x) AS "columnTypes",
                (SELECT coalesce(json_agg(x), '[]') FROM (${CHECK_CONSTRAINTS} AND ${RELATION_FILTER}) x) AS checks`,
  values: [stale, signed],
});

/**
 * What lintRelationFacts cannot keep per table: functions' volatility and the
 * materialized views, read whole each time (few rows; user functions have
 * oids from FirstNormalObjectId up, which the index on pg_proc finds), and
 * `sig`, which moves when a schema or a type other than a table's row type
 * (or its array) is created, renamed, altered or dropped: a column's
 * format_type() text and a key's schema name can change then without any
 * catalog row of the table itself changing, and every kept table is read again.
 */
export const lintGlobalFacts = (): Query => ({
  text: `SELECT (SELECT coalesce(json_agg(x), '[]') FROM (${FUNCTIONS(`NOT (${SYSTEM_SCHEMAS}) AND p.oid >= 16384`)}) x) AS functions,
                (SELECT coalesce(json_agg(x), '[]') FROM (${MATERIALIZED_VIEWS}) x) AS "materializedViews",
                concat_ws('|',
                  (SELECT count(*) || ':' || sum(t.xmin::text::bigint) FROM pg_type t LEFT JOIN pg_class tc ON tc.oid = t.typrelid
                    WHERE t.oid >= 16384 AND t.typcategory <> 'A' AND (t.typrelid = 0 OR tc.relkind = 'c')),
                  (SELECT count(*) || ':' || sum(xmin::text::bigint) FROM pg_namespace WHERE oid >= 16384)) AS sig`,
});

export const lintServerVersion = (): Query => ({ text: `SELECT current_setting('server_version_num')::int AS version_num` });

export const migrationsTableExists = (qualified: string): Query => ({ text: `SELECT to_regclass($1) IS NOT NULL AS exists`, values: [qualified] });

// Identifiers are escaped by the caller's client.escapeIdentifier.
export const appliedMigrationNames = (escapedTable: string): Query => ({ text: `SELECT name FROM ${escapedTable} ORDER BY run_on, id` });

/**
 * The relations a run's lint treats as existing: those on the target before the run (tables,
 * partitioned tables, materialized views), with what they hold. Sizes come from the catalog's
 * page counts (heap and TOAST), not pg_total_relation_size(), which would queue behind a
 * session holding ACCESS EXCLUSIVE on a table.
 */
export const lintTargetRelations = (): Query => ({
  text: `SELECT lower(n.nspname || '.' || c.relname) AS name, c.relkind AS kind, GREATEST(c.reltuples, 0)::float8 AS rows,
                ((c.relpages + COALESCE(t.relpages, 0))::float8 * current_setting('block_size')::int) AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
         WHERE c.relkind IN ('r', 'p', 'm') AND ${USER_SCHEMAS} ORDER BY 1`,
});

/** The search_path a migration session of this role starts with, and the schemas it can resolve to. */
export const lintSearchPath = (): Query => ({
  text: `SELECT current_setting('search_path') AS setting, current_user::text AS "user", array(SELECT nspname::text FROM pg_namespace) AS schemas`,
});
