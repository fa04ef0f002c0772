import type pg from 'pg';
import { maybeOne, one } from '../../database/db.js';
import { APPLY_LOCK_CLASS } from '../../database/sql/apply.js';
import { releaseRunLock, tryRunLock } from '../../database/sql/locks.js';

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
