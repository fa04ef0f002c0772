import type { Query } from '../db.js';

// The pause protocol between the service and ETL workers on a target:
// a worker processes each batch in one transaction that first takes
// pg_advisory_xact_lock_shared(ETL_LOCK_CLASS, ETL_BATCH_LOCK) and then reads
// etl_control.paused, stopping if set. Pausing sets the flag, then waits until
// the exclusive form of that lock can be taken: at that moment no batch is in
// flight, and every later batch sees the flag.
export const ETL_LOCK_CLASS = 7317;
export const ETL_BATCH_LOCK = 2;

export const etlControlExists = (): Query => ({ text: `SELECT to_regclass('public.etl_control') IS NOT NULL AS exists` });

export const setEtlPaused = (paused: boolean, reason: string | null, actor: string): Query => ({
  // Qualified like etlControlExists: a session whose search_path leaves out public still finds it.
  text: 'UPDATE public.etl_control SET paused = $1, reason = $2, changed_by = $3, changed_at = now() RETURNING paused',
  values: [paused, reason, actor],
});

export const readEtlControl = (): Query => ({ text: 'SELECT paused, reason, changed_by, changed_at FROM public.etl_control' });

/** Worker side, inside its batch transaction. */
export const takeBatchLockShared = (): Query => ({
  text: 'SELECT pg_advisory_xact_lock_shared($1, $2)',
  values: [ETL_LOCK_CLASS, ETL_BATCH_LOCK],
});

/** Pauser side: true once no batch holds the shared lock (then released at once). */
export const tryBatchLockExclusive = (): Query => ({
  text: 'SELECT pg_try_advisory_lock($1, $2) AS locked',
  values: [ETL_LOCK_CLASS, ETL_BATCH_LOCK],
});

export const releaseBatchLockExclusive = (): Query => ({
  text: 'SELECT pg_advisory_unlock($1, $2)',
  values: [ETL_LOCK_CLASS, ETL_BATCH_LOCK],
});
