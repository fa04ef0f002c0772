// Row counts for the report: the planner's reltuples when the statistics are
// fresh, an exact count (bounded) when they are missing or stale. A table
// never analyzed has reltuples -1 (PostgreSQL 14+), and one filled since its
// last ANALYZE can be far off: 1,000 rows reported as "2 rows".
import type pg from 'pg';
import { exec, one } from '../../../database/db.js';
import { beginReadOnly, boundedCount, rollback, sampleLimits } from '../../../database/sql/estimates.js';

/** An exact count stops here and says "at least". */
export const COUNT_LIMIT = 1_000_000;
const COUNT_TIMEOUT_MS = 3000;

export interface RowStats {
  schema: string;
  relname: string;
  reltuples: number;
  nLiveTup: number | null;
  nModSinceAnalyze: number | null;
}

export interface RowCount {
  rows: number;
  /** reltuples (fresh statistics), count (exact), count-bounded (at least `rows`), n_live_tup (a count that timed out). */
  source: 'reltuples' | 'count' | 'count-bounded' | 'n_live_tup';
}

/**
 * Statistics that cannot be trusted for a row count: never analyzed, or
 * changed since by more than would make autovacuum analyze again (50 rows plus
 * 10 %, its default threshold), by the collector's modification or live counts.
 */
export function isStale(s: RowStats): boolean {
  if (s.reltuples < 0) return true;
  const slack = (n: number) => 50 + 0.1 * n;
  if (s.nModSinceAnalyze !== null && s.nModSinceAnalyze > slack(s.reltuples)) return true;
  return s.nLiveTup !== null && Math.abs(s.nLiveTup - s.reltuples) > slack(Math.max(s.nLiveTup, s.reltuples));
}

/** The row count of one table, counted (at most COUNT_LIMIT + 1 rows, read-only, bounded in time) when its statistics are stale. */
export async function rowCount(client: pg.ClientBase, s: RowStats): Promise<RowCount> {
  if (!isStale(s)) return { rows: Math.round(s.reltuples), source: 'reltuples' };
  await exec(client, beginReadOnly());
  try {
    await exec(client, sampleLimits(COUNT_TIMEOUT_MS, 500, '4MB'));
    const { n } = await one<{ n: number }>(client, boundedCount(s.schema, s.relname, COUNT_LIMIT + 1));
    return n > COUNT_LIMIT ? { rows: COUNT_LIMIT, source: 'count-bounded' } : { rows: n, source: 'count' };
  } catch {
    return { rows: Math.max(0, Math.round(s.nLiveTup ?? s.reltuples)), source: 'n_live_tup' };
  } finally {
    await exec(client, rollback()).catch(() => undefined);
  }
}

/** "1,000", or "≥1,000,000" for a count that stopped at its bound. */
export function formatRows(rows: number, source: RowCount['source'] | undefined): string {
  const text = Math.round(rows).toLocaleString('en-US');
  return source === 'count-bounded' ? `≥${text}` : text;
}
