import type { StatementImpact } from '../sql-analysis/index.js';
import { parallelSpeedup, plannedIndexWorkers, type FixedCosts, type ParallelSettings } from './calibrate.js';
import type { StatementEffects } from './locks-held.js';
import type { ScaleMethod, SeededTable } from './types.js';

// From a statement's time on the copy to an estimate for the target: the work
// that grows with a table grows with its rows (N on the target, n on the
// copy) — linearly for rewrites, scans and row changes, as N log N for index
// builds, which sort their keys. Catalog-only work does not grow, and neither
// does a statement's fixed cost (measured on a one-row table of the copy).
// An index build on the target may use the parallel workers PostgreSQL plans
// for its table; the copy builds without (max_parallel_maintenance_workers = 0).
// What the statement did is taken from what was seen on the copy (a new
// storage file = rewrite, a new index on an existing table = index build)
// before the parser's view (validating scans, DML, DO blocks).

export const SCALING_METHOD =
  'Each statement of the UP phase is timed on the copy, when applied and when re-applied after its down; its lower time less its fixed cost (the same statement kind on a one-row table of the copy) ' +
  'is scaled by the rows of the tables it works through: rows on the target / rows on the copy for rewrites, validating scans and row changes; ' +
  '(N log N)/(n log n) for index builds, divided by the speedup of the parallel workers PostgreSQL would plan on the target ' +
  '(Amdahl, 80% of a build parallel); catalog-only statements are not scaled. Rows on the target are the planner\'s reltuples ' +
  '(exact when the whole table was copied). Locks are read on the rehearsal connection after every statement and polled from a ' +
  'second connection every 20 ms while it runs; a lock is held from the start of the statement that took it to the end of its ' +
  'transaction. Lock waits on the target are not included.';

// Row changes and reads that go through a table. An INSERT's cost is its own rows, not the table's: it does not scale.
const DML = new Set(['UpdateStmt', 'DeleteStmt', 'MergeStmt', 'SelectStmt', 'RefreshMatViewStmt', 'ClusterStmt', 'VacuumStmt']);
const OPAQUE = new Set(['DoStmt', 'CallStmt', 'Unparsed', 'Unknown']);

type Work = 'index' | 'rewrite' | 'rows' | null;

export interface StatementScale {
  scale: number | null;
  method: ScaleMethod;
  tables: string[];
  work: Work;
}

function rowsOf(tables: string[], seeded: Map<string, SeededTable>): { copy: number; target: number; known: string[] } {
  const known = [...new Set(tables)].filter((t) => seeded.has(t)).sort();
  return {
    copy: known.reduce((sum, t) => sum + seeded.get(t)!.copiedRows, 0),
    target: known.reduce((sum, t) => sum + seeded.get(t)!.targetRows, 0),
    known,
  };
}

function ratio(work: Exclude<Work, null>, tables: string[], seeded: Map<string, SeededTable>): StatementScale {
  const method: ScaleMethod = work === 'index' ? 'n-log-n' : 'linear';
  const { copy, target, known } = rowsOf(tables, seeded);
  // Tables the run created itself hold the same rows on the copy and the target.
  if (known.length === 0) return { scale: 1, method: 'constant', tables: [], work: null };
  if (target === 0) return { scale: 0, method, tables: known, work };
  if (copy === 0) return { scale: null, method: 'unknown', tables: known, work };
  if (method === 'n-log-n' && copy >= 2 && target >= 2) {
    return { scale: (target * Math.log(target)) / (copy * Math.log(copy)), method, tables: known, work };
  }
  return { scale: target / copy, method: 'linear', tables: known, work };
}

/** How this statement's time on the copy scales to the target. */
export function scaleOf(effects: StatementEffects, impacts: StatementImpact[], seeded: Map<string, SeededTable>): StatementScale {
  if (effects.indexed.length && !effects.rewrote.length) return ratio('index', effects.indexed, seeded);
  if (effects.rewrote.length) return ratio('rewrite', effects.rewrote, seeded);
  const parsed = impacts.filter((i) => i.buildsIndex || i.rewritesTable || i.scansTable || DML.has(i.kind));
  if (parsed.some((i) => i.buildsIndex) && !parsed.some((i) => i.rewritesTable || i.scansTable)) {
    return ratio('index', parsed.flatMap((i) => i.tables), seeded);
  }
  if (parsed.length) return ratio('rows', parsed.flatMap((i) => i.tables), seeded);
  // A DO block or a function: what it touched is known from its locks only.
  if (impacts.some((i) => OPAQUE.has(i.kind))) return ratio('rows', effects.locks.map((l) => l.relation), seeded);
  return { scale: 1, method: 'constant', tables: [], work: null };
}

export interface TargetEstimate {
  fixedMs: number;
  parallelWorkers: number;
  estimatedTargetMs: number | null;
}

/** fixed + (time on the copy - fixed) × scale / parallel speedup. */
export function estimateOnTarget(sampleMs: number, s: StatementScale, fixed: FixedCosts | null, parallel: ParallelSettings | null, seeded: Map<string, SeededTable>): TargetEstimate {
  if (s.work === null || s.scale === null) return { fixedMs: 0, parallelWorkers: 0, estimatedTargetMs: s.scale === null ? null : Math.round(sampleMs * s.scale) };
  const fixedMs = Math.min(sampleMs, s.work === 'index' ? fixed?.indexMs ?? 0 : s.work === 'rewrite' ? fixed?.rewriteMs ?? 0 : 0);
  const heap = s.tables.reduce((sum, t) => sum + (seeded.get(t)?.targetHeapBytes ?? 0), 0);
  const parallelWorkers = s.work === 'index' && parallel ? plannedIndexWorkers(heap, parallel) : 0;
  return { fixedMs, parallelWorkers, estimatedTargetMs: Math.round(fixedMs + ((sampleMs - fixedMs) * s.scale) / parallelSpeedup(parallelWorkers)) };
}
