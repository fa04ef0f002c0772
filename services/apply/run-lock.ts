import type pg from 'pg';
import { exec, maybeOne, one } from '../../database/db.js';
import { isPgError, LOCK_NOT_AVAILABLE } from '../../database/pg-errors.js';
import { APPLY_LOCK_CLASS } from '../../database/sql/apply.js';
import { lockTimeout, releaseRunLock, tryRunLock, waitRunLock } from '../../database/sql/locks.js';

/** A run's apply lock, held on a dedicated control connection until release(). */
export interface RunLock {
  release(): Promise<void>;
}

/**
 * Takes the run's apply lock (pg_try_advisory_lock) on its own connection, or
 * null when another session holds it. Whoever works on an in-flight run
 * (apply, watch, rollback, restore, reconciliation) holds it from before the
 * status change to the end: a free lock on an in-flight run means its owner
 * died. The lock dies with the connection.
 */
export async function tryLockRun(control: pg.Pool, runId: string): Promise<RunLock | null> {
  const client = await control.connect();
  try {
    const { locked } = await one<{ locked: boolean }>(client, tryRunLock(APPLY_LOCK_CLASS, runId));
    if (!locked) {
      client.release();
      return null;
    }
  } catch (err) {
    client.release(err as Error);
    throw err;
  }
  return heldOn(client, runId);
}

/**
 * Waits up to `timeoutMs` for the run's apply lock, or null when it stays
 * held. For a holder just terminated: its backend lets go of its locks only as
 * it exits, a moment after pg_terminate_backend returns, so a try at once can
 * still find it held. The server grants the lock as soon as it is free.
 */
export async function waitLockRun(control: pg.Pool, runId: string, timeoutMs: number): Promise<RunLock | null> {
  const client = await control.connect();
  try {
    await client.query('BEGIN');
    await exec(client, lockTimeout(timeoutMs, 'transaction'));
    await exec(client, waitRunLock(APPLY_LOCK_CLASS, runId));
    // The session-level lock outlives the transaction; the lock_timeout does not.
    await client.query('COMMIT');
  } catch (err) {
    if (isPgError(err, LOCK_NOT_AVAILABLE)) {
      await client.query('ROLLBACK').then(() => client.release(), (e: Error) => client.release(e));
      return null;
    }
    // Dropping the connection drops whatever it may hold.
    client.release(err as Error);
    throw err;
  }
  return heldOn(client, runId);
}

function heldOn(client: pg.PoolClient, runId: string): RunLock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      const ok = await maybeOne(client, releaseRunLock(APPLY_LOCK_CLASS, runId)).then(() => true, () => false);
      // A connection whose unlock failed may still hold the lock: drop it rather than pool it.
      client.release(ok ? undefined : new Error('apply lock release failed'));
    },
  };
}
