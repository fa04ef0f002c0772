import type { Query } from '../db.js';

// The data-bearing rehearsal (services/preflight/data-rehearsal): what it
// reads on the target (only catalog facts and, through read-only psql
// sessions, the rows it copies) and what it runs on the throw-away copy.
// Identifiers arrive quoted by the server (format('%I')), never from text.

const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'sfm_observe') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;

/** A table whose rows the rehearsal copies. */
export interface SourceTable {
  /** 'schema.table', lower case: how the observer and the report name relations. */
  relation: string;
  /** The quoted, qualified name. */
  ident: string;
  /** The quoted columns COPY moves (generated and dropped columns left out), or null for a table without any. */
  columns: string | null;
  /** The planner's row count on the target (-1: never analyzed). */
  reltuples: number;
  heap_bytes: number;
}

/**
 * On the target: the ordinary tables and partitions whose data a dump would
 * hold (extension members and the migrations table left out: the rehearsal
 * writes the history itself).
 */
export const sourceTables = (migrationsSchema: string, migrationsTable: string): Query => ({
  text: `SELECT lower(n.nspname || '.' || c.relname) AS relation, format('%I.%I', n.nspname, c.relname) AS ident,
                (SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns,
                c.reltuples::float8 AS reltuples, pg_relation_size(c.oid)::float8 AS heap_bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND ${USER_SCHEMA}
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
           AND NOT (n.nspname = $1 AND c.relname = $2)
         ORDER BY 1`,
  values: [migrationsSchema, migrationsTable],
});

/** On the target: what a full copy would occupy (heap, TOAST and indexes of every table and materialized view). */
export const targetDataBytes = (): Query => ({
  text: `SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::float8 AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'm') AND ${USER_SCHEMA}`,
});

/** On the target: each sequence's position, so rows a migration inserts on the copy do not collide with copied ones. */
export const targetSequences = (): Query => ({
  text: `SELECT format('%I.%I', schemaname, sequencename) AS ident, last_value::text AS value
         FROM pg_sequences WHERE last_value IS NOT NULL AND schemaname NOT IN ('pg_catalog', 'information_schema')`,
});

// ---------------------------------------------------------------- the COPY texts psql runs

/**
 * The target side of a sample: SYSTEM sampling reads only the chosen share of
 * the table's pages (BERNOULLI would read all of them), REPEATABLE makes a
 * re-run copy the same rows; `percent` null copies the first `limit` rows.
 */
export const copySampleOut = (ident: string, columns: string, percent: number | null, limit: number): string =>
  `COPY (SELECT ${columns} FROM ONLY ${ident}${percent === null ? '' : ` TABLESAMPLE SYSTEM (${percent}) REPEATABLE (18)`} LIMIT ${limit}) TO STDOUT`;

export const copyIn = (ident: string, columns: string): string => `COPY ${ident} (${columns}) FROM STDIN;`;

export const setSequence = (ident: string, value: string): string =>
  `SELECT pg_catalog.setval('${ident.replace(/'/g, "''")}', ${/^-?\d+$/.test(value) ? value : 'NULL'}, true);`;

// ---------------------------------------------------------------- on the copy

export const emptySearchPath = (): Query => ({ text: "SELECT set_config('search_path', '', true)" });

/** Foreign keys of ordinary tables (those of partitioned tables cannot be re-added NOT VALID, so they stay). */
export const copyForeignKeys = (): Query => ({
  text: `SELECT format('%I.%I', n.nspname, c.relname) AS ident, format('%I', co.conname) AS name,
                pg_get_constraintdef(co.oid) AS definition, co.convalidated AS validated
         FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE co.contype = 'f' AND c.relkind = 'r' AND co.conparentid = 0 AND ${USER_SCHEMA}
         ORDER BY 1, 2`,
});

/** User triggers that fire on a normal session: the load switches them off and back on. */
export const copyEnabledTriggers = (): Query => ({
  text: `SELECT format('%I.%I', n.nspname, c.relname) AS ident, format('%I', t.tgname) AS name, t.tgenabled AS enabled
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND t.tgenabled IN ('O', 'A') AND c.relkind IN ('r', 'p') AND ${USER_SCHEMA}
         ORDER BY 1, 2`,
});

export const dropConstraint = (ident: string, name: string): string => `ALTER TABLE ${ident} DROP CONSTRAINT ${name};`;

export const addConstraintNotValid = (ident: string, name: string, definition: string): string =>
  `ALTER TABLE ${ident} ADD CONSTRAINT ${name} ${definition}${/\bNOT VALID\s*$/i.test(definition) ? '' : ' NOT VALID'};`;

export const validateConstraint = (ident: string, name: string): Query => ({ text: `ALTER TABLE ${ident} VALIDATE CONSTRAINT ${name}` });

export const setTrigger = (ident: string, name: string, how: 'DISABLE' | 'ENABLE' | 'ENABLE ALWAYS'): string =>
  `ALTER TABLE ${ident} ${how} TRIGGER ${name};`;

export const analyzeTable = (ident: string): Query => ({ text: `ANALYZE ${ident}` });

export const countRows = (ident: string): Query => ({ text: `SELECT count(*)::float8 AS rows FROM ${ident}` });

/** The heap size of each named table (quoted, qualified). */
export const heapBytes = (idents: string[]): Query => ({
  text: 'SELECT i AS ident, pg_relation_size(i::regclass)::float8 AS bytes FROM unnest($1::text[]) i',
  values: [idents],
});

/** Each user table's size on disk (heap, TOAST and indexes), for the growth a migration causes. */
export const copyTableSizes = (): Query => ({
  text: `SELECT lower(n.nspname || '.' || c.relname) AS relation, pg_total_relation_size(c.oid)::float8 AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'm') AND ${USER_SCHEMA}`,
});

// ---------------------------------------------------------------- control database

/** The environment's most recent verified pg_dump backup (a full copy's first choice). */
export const latestVerifiedDump = (environment: string): Query => ({
  text: `SELECT id, method, location, size_bytes::float8 AS size_bytes, sha256, created_at, verified_at FROM backups
         WHERE environment = $1 AND method = 'pg_dump' AND verified_at IS NOT NULL AND location IS NOT NULL AND sha256 IS NOT NULL
         ORDER BY created_at DESC LIMIT 1`,
  values: [environment],
});

// ---------------------------------------------------------------- what does not grow with the rows

/** A one-row table on the copy: the fixed cost of an index build or a rewrite there (catalog work, the build's fsync). */
export const CALIBRATION_SCHEMA = 'sfm_calibration';
export const createCalibrationTable = (): Query[] => [
  { text: `CREATE SCHEMA ${CALIBRATION_SCHEMA}` },
  { text: `CREATE TABLE ${CALIBRATION_SCHEMA}.one (k int)` },
  { text: `INSERT INTO ${CALIBRATION_SCHEMA}.one VALUES (1)` },
];
export const calibrationIndexBuild = (): Query => ({ text: `CREATE INDEX ON ${CALIBRATION_SCHEMA}.one (k)` });
export const calibrationRewrite = (): Query => ({ text: `ALTER TABLE ${CALIBRATION_SCHEMA}.one ALTER COLUMN k TYPE bigint` });
export const dropCalibrationTable = (): Query => ({ text: `DROP SCHEMA IF EXISTS ${CALIBRATION_SCHEMA} CASCADE` });

/** On the target: what PostgreSQL plans parallel index builds with. */
export const parallelIndexSettings = (): Query => ({
  text: `SELECT current_setting('max_parallel_maintenance_workers')::int AS max_workers,
                pg_size_bytes(current_setting('maintenance_work_mem'))::float8 AS maintenance_work_mem,
                pg_size_bytes(current_setting('min_parallel_table_scan_size'))::float8 AS min_parallel_table_scan_size,
                current_setting('block_size')::int AS block_size`,
});

export const noParallelMaintenance = (): Query => ({ text: 'SET max_parallel_maintenance_workers = 0' });
