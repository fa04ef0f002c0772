import type { StatementImpact } from '../sql-analysis/index.js';
import type { StatementEffects } from './locks-held.js';
import type { ScaleMethod, SeededTable } from './types.js';

// From a statement's time on the copy to an estimate for the target: the work
// that grows with a table grows with its rows (N on the target, n on the
// copy) — linearly for rewrites, scans and row changes, as N log N for index
// builds, which sort their keys. Catalog-only work does not grow. What the
// statement did is taken from what was seen on the copy (a new storage file
// = rewrite, a new index on an existing table = index build) before the
// parser's view (scans such as validations, DML).

export const SCALING_METHOD =
  'Each statement is timed on the copy. Its time is scaled by the rows of the tables it works through: ' +
  'rows on the target / rows on the copy for rewrites, validating scans and row changes; (N log N)/(n log n) for index builds; ' +
  'unchanged for catalog-only statements. Rows on the target are the planner\'s reltuples (exact when the whole table was copied). ' +
  'Locks are read on the rehearsal connection after every statement and polled from a second connection every 20 ms while it runs; ' +
  'a lock is held from the start of the statement that took it to the end of its transaction. Lock waits on the target are not included.';

// Row changes and reads that go through a table. An INSERT's cost is its own rows, not the table's: it does not scale.
const DML = new Set(['UpdateStmt', 'DeleteStmt', 'MergeStmt', 'SelectStmt', 'RefreshMatViewStmt', 'ClusterStmt', 'VacuumStmt']);
const OPAQUE = new Set(['DoStmt', 'CallStmt', 'Unparsed', 'Unknown']);

export interface StatementScale {
  scale: number | null;
  method: ScaleMethod;
  tables: string[];
}

function rowsOf(tables: string[], seeded: Map<string, SeededTable>): { copy: number; target: number; known: string[] } {
  const known = tables.filter((t) => seeded.has(t));
  return {
    copy: known.reduce((sum, t) => sum + seeded.get(t)!.copiedRows, 0),
    target: known.reduce((sum, t) => sum + seeded.get(t)!.targetRows, 0),
    known,
  };
}

function ratio(method: 'linear' | 'n-log-n', tables: string[], seeded: Map<string, SeededTable>): StatementScale {
  const { copy, target, known } = rowsOf(tables, seeded);
  // Tables the run created itself hold the same rows on the copy and the target.
  if (known.length === 0) return { scale: 1, method: 'constant', tables: [] };
  if (target === 0) return { scale: 0, method, tables: known };
  if (copy === 0) return { scale: null, method: 'unknown', tables: known };
  if (method === 'n-log-n' && copy >= 2 && target >= 2) {
    return { scale: (target * Math.log(target)) / (copy * Math.log(copy)), method, tables: known };
  }
  return { scale: target / copy, method: 'linear', tables: known };
}

/** How this statement's time on the copy scales to the target. */
export function scaleOf(effects: StatementEffects, impacts: StatementImpact[], seeded: Map<string, SeededTable>): StatementScale {
  if (effects.indexed.length && !effects.rewrote.length) return ratio('n-log-n', effects.indexed, seeded);
  if (effects.rewrote.length) return ratio('linear', effects.rewrote, seeded);
  const parsed = impacts.filter((i) => i.buildsIndex || i.rewritesTable || i.scansTable || DML.has(i.kind));
  if (parsed.some((i) => i.buildsIndex) && !parsed.some((i) => i.rewritesTable || i.scansTable)) {
    return ratio('n-log-n', parsed.flatMap((i) => i.tables), seeded);
  }
  if (parsed.length) return ratio('linear', parsed.flatMap((i) => i.tables), seeded);
  // A DO block or a function: what it touched is known from its locks only.
  if (impacts.some((i) => OPAQUE.has(i.kind))) return ratio('linear', [...new Set(effects.locks.map((l) => l.relation))], seeded);
  return { scale: 1, method: 'constant', tables: [] };
}
