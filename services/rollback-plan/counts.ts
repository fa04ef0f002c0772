import type pg from 'pg';
import { maybeOne, one } from '../../database/db.js';
import { isConnectionError, isPgError, LOCK_NOT_AVAILABLE, QUERY_CANCELED } from '../../database/pg-errors.js';
import { boundedColumnCount, boundedRowCount, columnExists, planSessionLimits, relationFacts } from '../../database/sql/rollback-plan.js';

/** Rows are counted exactly up to this many; beyond it the plan says "more than". */
export const ROW_COUNT_BOUND = 1_000_000;
// A plan reads a production target: it never queues behind a lock and never runs long.
const PLAN_LOCK_TIMEOUT_MS = 1000;
const PLAN_STATEMENT_TIMEOUT_MS = 15_000;

export interface Measured {
  exists: boolean;
  /** Rows (a table) or rows holding a value (a column); null when it could not be counted. */
  rows: number | null;
  /** false: there are more than `rows` (the bound was reached). */
  rowsExact: boolean;
  /** The table's total size (with indexes and TOAST), or the column's values' size. */
  bytes: number | null;
  note: string | null;
}

function qualified(client: pg.ClientBase, table: string): string {
  const [schema, name] = table.includes('.') ? (table.split('.', 2) as [string, string]) : ['public', table];
  return `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`;
}

/**
 * Exact, bounded row counts and sizes of what a rollback would destroy, in a
 * read-only transaction with a short lock and statement timeout. A count that
 * cannot be taken (a lock held, a timeout) is reported as unknown, never as 0.
 */
export async function measure(client: pg.ClientBase, target: { table: string; column: string | null }, bound = ROW_COUNT_BOUND): Promise<Measured> {
  const name = qualified(client, target.table);
  await client.query('BEGIN READ ONLY');
  try {
    await one(client, planSessionLimits(PLAN_LOCK_TIMEOUT_MS, PLAN_STATEMENT_TIMEOUT_MS));
    const facts = await maybeOne<{ oid: string; bytes: string }>(client, relationFacts(name));
    if (!facts) return { exists: false, rows: 0, rowsExact: true, bytes: 0, note: `${target.table} does not exist on the target` };
    if (target.column !== null) {
      if (!(await maybeOne(client, columnExists(name, target.column)))) {
        return { exists: false, rows: 0, rowsExact: true, bytes: 0, note: `${target.table}.${target.column} does not exist on the target` };
      }
      const c = await one<{ scanned: string; n: string; bytes: string }>(client, boundedColumnCount(name, client.escapeIdentifier(target.column), bound));
      const exact = Number(c.scanned) <= bound;
      return { exists: true, rows: Number(c.n), rowsExact: exact, bytes: Number(c.bytes), note: exact ? null : `only the first ${bound} rows were read` };
    }
    const n = Number((await one<{ n: string }>(client, boundedRowCount(name, bound))).n);
    return { exists: true, rows: Math.min(n, bound), rowsExact: n <= bound, bytes: Number(facts.bytes), note: n > bound ? `more than ${bound} rows` : null };
  } catch (err) {
    if (isConnectionError(err)) throw err;
    const why = isPgError(err, LOCK_NOT_AVAILABLE) ? 'a lock on it is held by another session'
      : isPgError(err, QUERY_CANCELED) ? 'counting took too long' : (err as Error).message;
    return { exists: true, rows: null, rowsExact: false, bytes: null, note: `could not count ${target.table}${target.column ? `.${target.column}` : ''}: ${why}` };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}
