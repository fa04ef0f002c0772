import pg from 'pg';
import type { Query } from '../db.js';

// The definition file's own SQL, and the checks that it fits the target.

/** A validated, optionally schema-qualified name, each part quoted. */
export function quoteQualified(name: string): string {
  return name.split('.').map((part) => pg.escapeIdentifier(part)).join('.');
}

/**
 * The next batch's key range after `lastKey` (null: from the start): its first
 * and last key (as text) and how many keys it holds. The key column leads an
 * index (checked when the job is created), so this is an index range scan.
 */
export const nextKeyRange = (table: string, keyColumn: string, lastKey: string | null, limit: number): Query => {
  const k = pg.escapeIdentifier(keyColumn);
  const where = lastKey === null ? '' : `WHERE ${k} > $2`;
  // ORDER BY b.k, never a bare k: that would name the text output column and sort '1000' before '999'.
  return {
    text: `WITH b AS MATERIALIZED (SELECT ${k} AS k FROM ${quoteQualified(table)} ${where} ORDER BY ${k} LIMIT $1)
           SELECT (SELECT b.k::text FROM b ORDER BY b.k LIMIT 1) AS lo, (SELECT b.k::text FROM b ORDER BY b.k DESC LIMIT 1) AS hi,
                  (SELECT count(*) FROM b)::int AS n`,
    values: lastKey === null ? [limit] : [limit, lastKey],
  };
};

/** The definition's batch statement for keys $1..$2 (both inclusive). */
export const runBatch = (statement: string, lo: string, hi: string): Query => ({ text: statement, values: [lo, hi] });

/** The definition's "remaining rows" query. */
export const runRemaining = (statement: string): Query => ({ text: statement });

/** Planner's row estimate of the table (progress when there is no remaining query). */
export const tableEstimate = (table: string): Query => ({
  text: 'SELECT GREATEST(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = to_regclass($1)',
  values: [table],
});

/**
 * Whether the table exists, has the key column, an index the key column
 * leads, and whether that column is NOT NULL and unique on its own: keyset
 * batches never see a NULL key, and a repeated key would make a batch unbounded.
 */
export const keyColumnFacts = (table: string, keyColumn: string): Query => ({
  text: `SELECT to_regclass($1) IS NOT NULL AS table_exists,
           EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped) AS column_exists,
           EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = to_regclass($1) AND a.attname = $2 AND i.indisvalid AND i.indpred IS NULL) AS indexed,
           COALESCE((SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped), false) AS not_null,
           EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = to_regclass($1) AND a.attname = $2 AND i.indisvalid AND i.indpred IS NULL
                     AND i.indisunique AND i.indnkeyatts = 1) AS unique_key`,
  values: [table, keyColumn],
});

/** Plans (never runs) a statement, so a definition that does not fit the target is refused at creation. */
export const prepareStatement = (name: string, statement: string): Query => ({ text: `PREPARE ${pg.escapeIdentifier(name)} AS ${statement}` });
export const deallocateStatement = (name: string): Query => ({ text: `DEALLOCATE ${pg.escapeIdentifier(name)}` });
