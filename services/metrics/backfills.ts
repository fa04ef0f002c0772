import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

// Backfill metrics, observed by the process executing a job (one executor per
// job at a time, by lease): counters are summed across replicas on a
// dashboard; the gauges are set only by the executing replica, so a dashboard
// takes max() across replicas.

/** Why an executor waits instead of running a batch (starforge_backfill_backoffs_total{reason}). */
export const BACKOFF_REASONS = ['pressure', 'retry', 'unreachable'] as const;

const BATCH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createBackfillMetrics(registry: Registry) {
  const registers = [registry];
  const labelNames = ['environment', 'backfill'] as const;
  const rowsProcessed = new Counter({
    name: 'starforge_backfill_rows_processed_total',
    help: 'Rows the backfill batches changed (committed), by environment and backfill name.',
    labelNames,
    registers,
  });
  const rowsFailed = new Counter({
    name: 'starforge_backfill_rows_failed_total',
    help: 'Rows a backfill could not change even alone, recorded in sfm_backfill.backfill_failures and skipped.',
    labelNames,
    registers,
  });
  const progress = new Gauge({
    name: 'starforge_backfill_progress_ratio',
    help: 'Share of a running backfill done: keys visited over keys visited plus remaining rows (or the table estimate); 1 when it succeeded.',
    labelNames,
    registers,
  });
  const rate = new Gauge({
    name: 'starforge_backfill_rows_per_second',
    help: 'Current pace of a backfill (rows visited per second since its executor started or last waited); 0 when not executing.',
    labelNames,
    registers,
  });
  const batchDuration = new Histogram({
    name: 'starforge_backfill_batch_duration_seconds',
    help: 'Duration of a backfill batch transaction (BEGIN to COMMIT), failed attempts included: the longest a row lock of the backfill is held.',
    labelNames,
    buckets: BATCH_BUCKETS,
    registers,
  });
  const backoffs = new Counter({
    name: 'starforge_backfill_backoffs_total',
    help: 'Times a backfill waited instead of running a batch, by reason: pressure (active sessions or replica lag), retry (a lock or statement timeout, then a smaller batch), unreachable (target down).',
    labelNames: ['environment', 'backfill', 'reason'] as const,
    registers,
  });

  /** Zero samples for a backfill when its job starts, so rate() sees the counters from the first batch. */
  function initBackfill(environment: string, backfill: string): void {
    rowsProcessed.inc({ environment, backfill }, 0);
    rowsFailed.inc({ environment, backfill }, 0);
    for (const reason of BACKOFF_REASONS) backoffs.inc({ environment, backfill, reason }, 0);
  }

  return { backfillRowsProcessed: rowsProcessed, backfillRowsFailed: rowsFailed, backfillProgress: progress, backfillRate: rate, backfillBatchDuration: batchDuration, backfillBackoffs: backoffs, initBackfill };
}

export type BackfillMetrics = ReturnType<typeof createBackfillMetrics>;
