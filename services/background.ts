import type pg from 'pg';
import { maybeOne, one } from '../database/db.js';
import { releaseRunLock, tryRunLock } from '../database/sql/locks.js';
import type { Logger } from './logger.js';

/**
 * Tracks background work so the process can wait for it on shutdown and
 * tests can wait for it to settle. Work never rejects into the void: a
 * failure is logged with its label.
 */
export function createBackground(log: Logger) {
  const inflight = new Set<Promise<void>>();
  let closed = false;

  function track<T>(work: Promise<T>): Promise<T> {
    const task: Promise<void> = work.then(() => undefined, () => undefined).finally(() => inflight.delete(task));
    inflight.add(task);
    return work;
  }

  function launch(label: string, context: object, fn: () => Promise<void>): void {
    if (closed) return;
    track(fn().catch((err) => log.error({ err, ...context }, `${label} failed unexpectedly`)));
  }

  async function idle(): Promise<void> {
    while (inflight.size) await Promise.allSettled([...inflight]);
  }

  async function close(): Promise<void> {
    closed = true;
    await idle();
  }

  return { track, launch, idle, close, isClosed: () => closed };
}

export type Background = ReturnType<typeof createBackground>;

/**
 * Runs `fn` while holding the run's advisory lock of `lockClass` on a
 * dedicated control connection; returns false (without running) when another
 * process holds it. The lock dies with the connection, so a crashed owner
 * frees the run for reconciliation.
 */
export async function withRunLock(control: pg.Pool, lockClass: number, runId: string, fn: () => Promise<void>): Promise<boolean> {
  const client = await control.connect();
  try {
    const { locked } = await one<{ locked: boolean }>(client, tryRunLock(lockClass, runId));
    if (!locked) return false;
    try {
      await fn();
    } finally {
      await maybeOne(client, releaseRunLock(lockClass, runId));
    }
    return true;
  } finally {
    client.release();
  }
}
