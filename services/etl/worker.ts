import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { exec, maybeOne, rows } from '../../database/db.js';
import {
  claimSnapshots, deleteTroops, etlPaused, insertEtlError, insertTroops, markFailed, markProcessed, upsertSummaries,
  type ClaimedSnapshot, type SummaryRow,
} from '../../database/sql/etl.js';
import { takeBatchLockShared } from '../../database/sql/etl-control.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import { parseSnapshot, type ParsedSnapshot } from './snapshot.js';

export interface BatchResult {
  paused: boolean;
  claimed: number;
  processed: number;
  failed: number;
  /** The snapshots this batch processed successfully. */
  processedIds: string[];
}

export interface BatchOptions {
  /** The smoke ETL processes its one snapshot while workers are paused. */
  ignorePause?: boolean;
  /**
   * Runs first inside the batch transaction and returns the one snapshot id to
   * process: a row inserted here is invisible to every other worker until the
   * batch commits, so none can take it.
   */
  prepare?: (client: pg.ClientBase) => Promise<string>;
}

interface Valid {
  snapshot: ClaimedSnapshot;
  parsed: ParsedSnapshot;
}

/** Writes the derived rows of `items` (the latest snapshot per user wins) and marks them processed. */
async function writeDerived(client: pg.ClientBase, items: Valid[]): Promise<void> {
  const latest = new Map<string, Valid>();
  for (const item of items) {
    const seen = latest.get(item.snapshot.user_id);
    if (!seen || seen.snapshot.created_at <= item.snapshot.created_at) latest.set(item.snapshot.user_id, item);
  }
  const users = [...latest.values()];
  const summaries: SummaryRow[] = users.map(({ snapshot, parsed }) => ({
    userId: snapshot.user_id, displayName: parsed.displayName, level: parsed.level, guild: parsed.guild,
    power: parsed.power, heroCount: parsed.heroCount, snapshotId: snapshot.id, snapshotAt: snapshot.created_at,
  }));
  await exec(client, upsertSummaries(summaries));
  await exec(client, deleteTroops(users.map((u) => u.snapshot.user_id)));
  const troops = users.flatMap(({ snapshot, parsed }) => parsed.troops.map((t) => ({ userId: snapshot.user_id, ...t })));
  if (troops.length) await exec(client, insertTroops(troops));
  await exec(client, markProcessed(items.map((i) => i.snapshot.id)));
}

/**
 * Processes one batch in one transaction: takes the shared batch lock (so a
 * pauser can wait for it), honours etl_control.paused, claims with SKIP LOCKED,
 * writes the derived tables and marks the snapshots. Invalid snapshots are
 * recorded and never retried; a snapshot whose write fails is retried up to
 * maxAttempts without holding back the rest of the batch.
 */
export async function processBatch(client: pg.ClientBase, env: EnvironmentConfig, opts: BatchOptions = {}): Promise<BatchResult> {
  const result: BatchResult = { paused: false, claimed: 0, processed: 0, failed: 0, processedIds: [] };
  await client.query('BEGIN');
  try {
    await exec(client, takeBatchLockShared());
    if (!opts.ignorePause && (await maybeOne<{ paused: boolean }>(client, etlPaused()))?.paused) {
      await client.query('ROLLBACK');
      return { ...result, paused: true };
    }
    const onlyId = opts.prepare ? await opts.prepare(client) : null;
    const claimed = await rows<ClaimedSnapshot>(client, claimSnapshots(env.etl.batchSize, env.etl.maxAttempts, onlyId));
    result.claimed = claimed.length;
    const valid: Valid[] = [];
    for (const snapshot of claimed) {
      const parsed = parseSnapshot(snapshot.raw, snapshot.user_id);
      if (parsed.ok) {
        valid.push({ snapshot, parsed: parsed.value });
      } else {
        // Invalid data does not become valid on a retry.
        await exec(client, markFailed(snapshot.id, parsed.error, true));
        await exec(client, insertEtlError(snapshot.id, 'invalid_snapshot', parsed.error));
        result.failed += 1;
      }
    }
    if (valid.length) {
      await client.query('SAVEPOINT batch');
      try {
        await writeDerived(client, valid);
        await client.query('RELEASE SAVEPOINT batch');
        result.processed += valid.length;
        result.processedIds.push(...valid.map((v) => v.snapshot.id));
      } catch {
        // Find the culprit(s) one by one; the others still go through.
        await client.query('ROLLBACK TO SAVEPOINT batch');
        for (const item of valid) {
          await client.query('SAVEPOINT one');
          try {
            await writeDerived(client, [item]);
            await client.query('RELEASE SAVEPOINT one');
            result.processed += 1;
            result.processedIds.push(item.snapshot.id);
          } catch (err) {
            await client.query('ROLLBACK TO SAVEPOINT one');
            const message = `processing failed: ${(err as Error).message}`.slice(0, 2000);
            await exec(client, markFailed(item.snapshot.id, message, item.snapshot.error_count + 1 >= env.etl.maxAttempts));
            await exec(client, insertEtlError(item.snapshot.id, 'processing_error', message));
            result.failed += 1;
          }
        }
      }
    }
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * The in-process reference worker (ETL_WORKER on): one loop per environment
 * with a target. It sleeps when idle or paused and never crashes the process.
 */
export function createEtlWorkers(ctx: ServiceContext) {
  const { config, targets, metrics, log } = ctx;
  let controller: AbortController | null = null;
  let loops: Promise<void>[] = [];

  async function loop(env: EnvironmentConfig, signal: AbortSignal): Promise<void> {
    let lastError = '';
    while (!signal.aborted) {
      let idle = true;
      try {
        const result = await targets.withClient(env, (client) => processBatch(client, env));
        if (result.processed) metrics.etlProcessed.inc({ environment: env.name }, result.processed);
        if (result.failed) metrics.etlFailed.inc({ environment: env.name }, result.failed);
        idle = result.paused || result.claimed === 0;
        lastError = '';
      } catch (err) {
        // A target without the StarForge schema yet, or briefly down: say so once, keep polling.
        const message = (err as Error).message;
        if (message !== lastError) log.warn({ environment: env.name, reason: message }, 'ETL worker batch failed; retrying');
        lastError = message;
      }
      if (idle) await sleep(env.etl.pollIntervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  return {
    start(): void {
      if (controller || !config.etlWorker) return;
      controller = new AbortController();
      const signal = controller.signal;
      loops = Object.values(config.environments).filter((env) => targets.isConfigured(env.name)).map((env) => loop(env, signal));
    },
    async stop(): Promise<void> {
      controller?.abort();
      controller = null;
      await Promise.all(loops);
      loops = [];
    },
  };
}
