import type { Query } from '../db.js';

// Advisory lock classes (first key of the two-int form), one per kind of work.
export const PREFLIGHT_LOCK_CLASS = 7317;

export const tryRunLock = (lockClass: number, runId: string): Query => ({
  text: 'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
  values: [lockClass, runId],
});

export const releaseRunLock = (lockClass: number, runId: string): Query => ({
  text: 'SELECT pg_advisory_unlock($1, hashtext($2)) AS released',
  values: [lockClass, runId],
});

/** Held until the transaction ends: a sweep holds a dead run's lock exactly as long as it works on what the run left. */
export const tryRunXactLock = (lockClass: number, runId: string): Query => ({
  text: 'SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS locked',
  values: [lockClass, runId],
});

/**
 * Waits for the run's lock (session-level, as tryRunLock) up to the lock_timeout
 * set by lockTimeout(..., 'transaction') in the same transaction; past it, SQLSTATE 55P03.
 */
export const waitRunLock = (lockClass: number, runId: string): Query => ({
  text: 'SELECT pg_advisory_lock($1, hashtext($2))',
  values: [lockClass, runId],
});

/**
 * lock_timeout for the rest of the transaction, or for the session (until set
 * again); `ms` in milliseconds, or a value as PostgreSQL reads it ('5s', '0').
 */
export const lockTimeout = (ms: number | string, scope: 'transaction' | 'session'): Query => ({
  text: 'SELECT set_config(\'lock_timeout\', $1, $2)',
  values: [typeof ms === 'number' ? `${Math.max(1, Math.round(ms))}ms` : ms, scope === 'transaction'],
});
