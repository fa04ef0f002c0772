import type pg from 'pg';
import { exec, maybeOne, rows } from '../../database/db.js';
import { insertWriteCounters, statsReset, writeCounters, writeCountersOfBackup } from '../../database/sql/rollback-plan.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { Logger } from '../logger.js';
import type { TargetDatabases } from '../targets.js';

/** Per table ('schema.table'): [inserted, updated, deleted] rows, cumulative since the statistics reset. */
export type Counters = Record<string, [number, number, number]>;

export interface CounterSnapshot {
  takenAt: string;
  statsReset: string | null;
  counters: Counters;
}

export async function readWriteCounters(client: pg.ClientBase): Promise<CounterSnapshot> {
  const takenAt = new Date().toISOString();
  const list = await rows<{ table: string; ins: string; upd: string; del: string }>(client, writeCounters());
  const reset = await maybeOne<{ stats_reset: Date | null }>(client, statsReset());
  const counters: Counters = {};
  for (const r of list) counters[r.table] = [Number(r.ins), Number(r.upd), Number(r.del)];
  return { takenAt, statsReset: reset?.stats_reset?.toISOString() ?? null, counters };
}

/**
 * Read right before the backup starts, so every write the backup may miss is
 * counted (a write between this read and the dump's snapshot is counted as
 * lost: the safe side). A failure only costs the restore plan its numbers,
 * never the apply.
 */
export async function snapshotWriteCounters(targets: TargetDatabases, env: EnvironmentConfig, log: Logger): Promise<CounterSnapshot | null> {
  try {
    return await targets.withClient(env, readWriteCounters);
  } catch (err) {
    log.warn({ environment: env.name, reason: (err as Error).message }, 'could not read write counters before the backup; its restore plan will not count the writes since it');
    return null;
  }
}

/** Stores the snapshot with its backup, in the transaction that records the backup. */
export async function recordWriteCounters(client: pg.ClientBase, backupId: string, snapshot: CounterSnapshot | null): Promise<void> {
  if (!snapshot) return;
  await exec(client, insertWriteCounters(backupId, snapshot.takenAt, snapshot.statsReset, snapshot.counters));
}

export async function countersOfBackup(db: pg.ClientBase | pg.Pool, backupId: string): Promise<CounterSnapshot | null> {
  const row = await maybeOne<{ taken_at: Date; stats_reset: Date | null; counters: Counters }>(db, writeCountersOfBackup(backupId));
  return row ? { takenAt: row.taken_at.toISOString(), statsReset: row.stats_reset?.toISOString() ?? null, counters: row.counters } : null;
}
