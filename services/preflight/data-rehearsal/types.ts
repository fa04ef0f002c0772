// The data-bearing rehearsal's section of the preflight report. Only counts,
// sizes, timings, relation names and the migrations' own SQL: never a value
// of a copied row.

/** How a statement's time on the copy is carried over to the target. */
export type ScaleMethod =
  /** rows on the target / rows on the copy: table rewrites, scans, validations, row-by-row changes */
  | 'linear'
  /** (N log N) / (n log n) of the rows: index builds sort their keys */
  | 'n-log-n'
  /** catalog-only work, or only tables the run creates itself: the same on the target */
  | 'constant'
  /** the copy held no row of a table the statement works through: nothing to scale from */
  | 'unknown';

export interface HeldLock {
  relation: string;
  mode: string;
  /** From the start of the statement that took it until it was released (the transaction's end, or the statement's own without one). */
  heldMs: number;
}

export interface TimedStatement {
  sql: string;
  ms: number;
  /** The same statement when the up was re-applied after its down, on the same rows (null: not re-applied). */
  msAgain: number | null;
  ok: boolean;
  /** The locks this statement took on tables. */
  locks: HeldLock[];
}

export interface TableGrowth {
  table: string;
  bytesBefore: number;
  bytesAfter: number;
  /** The change scaled to the target (rows on the target / rows on the copy); null for a table the copy holds no rows of. */
  estimatedTargetGrowthBytes: number | null;
}

export interface MigrationMeasurement {
  migration: string;
  statements: TimedStatement[];
  growth: TableGrowth[];
}

export interface ScaledEstimate {
  migration: string;
  statement: string;
  /** The statement's lower time on the copy of the two ups (ms, msAgain). */
  sampleMs: number;
  /** The row-based factor (see `method`). */
  scale: number | null;
  method: ScaleMethod;
  /** The tables the scale was taken from. */
  tables: string[];
  /** What the statement costs on the copy whatever the rows (measured on a one-row table); not scaled. */
  fixedMs: number;
  /** Index builds: the parallel workers PostgreSQL would plan for it on the target (the copy builds without). */
  parallelWorkers: number;
  /** fixedMs + (sampleMs - fixedMs) × scale / the parallel speedup. */
  estimatedTargetMs: number | null;
  /** The static estimate (impact) of the same statement, for comparison; null when not known. */
  staticEstimateMs: number | null;
}

export interface SeededTable {
  table: string;
  copiedRows: number;
  /** Rows on the target, and how they were counted. */
  targetRows: number;
  targetRowsFrom: 'whole table copied' | 'reltuples' | 'heap size ratio';
  /** The table's heap on the target (what PostgreSQL plans parallel index builds from). */
  targetHeapBytes: number;
}

export interface DataRehearsalReport {
  /** What the environment's preflight.data asked for. */
  requested: 'sample' | 'full';
  /** What the copy held: 'schema' when the data could not be copied (`skipped` says why). */
  mode: 'sample' | 'full' | 'schema';
  skipped: { reason: string; tooLarge: boolean } | null;
  /** Where the rows came from. */
  source: string | null;
  /** sample: the most rows copied from one table. */
  sampleRows: number | null;
  seededRows: number;
  seededBytes: number;
  tables: SeededTable[];
  /** Foreign keys left NOT VALID on the copy because the sampled rows do not satisfy them. */
  foreignKeysNotValid: string[];
  seedMs: number;
  perMigration: MigrationMeasurement[];
  scaledEstimates: ScaledEstimate[];
  /** How locks, durations and the scale were measured. */
  method: string;
  notes: string[];
}
