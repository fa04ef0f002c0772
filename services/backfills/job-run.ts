import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { one } from '../../database/db.js';
import type { JobRow } from '../../database/sql/backfill-jobs.js';
import { targetPressure } from '../../database/sql/backfill-pressure.js';
import type { ServiceContext } from '../context.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { batchStep } from './batch-step.js';
import { APPLICATION_NAME } from './executor-identity.js';
import { holdLease, releaseLease } from './job-lease.js';
import { finishJob, type JobContext } from './job-step.js';
import {
  backoffMs, classifyError, describeError, effectiveBatchSize, Pacer, pressureBackoffMs, pressureReason, windowGate, type ErrorKind, type Pressure,
} from './pacing.js';
import { failuresStep, recordFailure } from './poison-rows.js';
import { readRemaining, storeRemaining } from './remaining-rows.js';
import { progressOf } from './store.js';

/** How often a running job re-reads its definition's remaining-rows count. */
const REMAINING_EVERY_MS = 30_000;
/** A single row hitting a lock or statement timeout this often is recorded as failed and skipped. */
const TRANSIENT_ATTEMPTS = 3;

export interface ClaimedJob {
  env: EnvironmentConfig;
  pool: pg.Pool;
  job: JobRow;
  owner: string;
  leaseMs: number;
  signal: AbortSignal;
}

/**
 * Runs one claimed job batch by batch until it is done, fails, loses its
 * lease or the process shuts down: pacing, backing off under pressure or
 * while the target is away, and splitting a failing range until its bad
 * rows stand alone. Logs what stops it unexpectedly; `afterwards` runs when it stops.
 */
export async function runJob(ctx: Pick<ServiceContext, 'log' | 'metrics'>, claimed: ClaimedJob, afterwards: () => void): Promise<void> {
  const { log, metrics } = ctx;
  const { env, job, owner, signal } = claimed;
  const def = job.definition;
  const labels = { environment: env.name, backfill: job.name };
  const failuresMode = job.failures_of !== null;
  const full = effectiveBatchSize(job.batch_size, job.max_rows_per_second);
  const pacer = new Pacer(job.max_rows_per_second);
  const appName = `${APPLICATION_NAME} ${job.name} ${owner}`;
  const jc: JobContext = { ...claimed, appName, pacer, log };
  let size = full;
  let failRemaining = 0;
  let transient = 0;
  let unreachable = 0;
  let pressured = 0;
  let scanned = Number(job.rows_scanned);
  let remaining: number | null = job.remaining_rows === null ? null : Number(job.remaining_rows);
  let remainingAt = 0;
  metrics.initBackfill(env.name, job.name);
  log.info({ environment: env.name, jobId: job.id, backfill: job.name, lastKey: job.last_key, owner }, 'backfill job claimed');

  const gauge = () => {
    const ratio = progressOf({ ...job, status: 'running', rows_scanned: String(scanned), remaining_rows: remaining === null ? null : String(remaining) });
    if (ratio !== null) metrics.backfillProgress.set(labels, ratio);
    metrics.backfillRate.set(labels, pacer.rate() ?? 0);
  };

  async function refreshRemaining(): Promise<void> {
    remaining = await readRemaining(jc);
    remainingAt = performance.now();
    if (remaining !== null) await storeRemaining(jc, remaining);
  }

  const backoff = (reason: 'pressure' | 'retry' | 'unreachable') => metrics.backfillBackoffs.inc({ ...labels, reason });

  try {
    if (!failuresMode && def.remaining) {
      await refreshRemaining();
      if (remaining === 0) {
        await finishJob(jc, { status: 'succeeded', remainingRows: 0 }, { remaining: 0, reason: 'the remaining-rows query reports nothing left to do' });
        metrics.backfillProgress.set(labels, 1);
        return;
      }
    }
    for (;;) {
      if (signal.aborted) {
        await releaseLease(jc, 0, null);
        return;
      }
      const gate = windowGate(env, job.window_only, new Date());
      if (!gate.open) {
        await releaseLease(jc, gate.retryInMs, gate.reason);
        return;
      }
      let pressure: Pressure | null = null;
      try {
        pressure = await one<{ active: number; lag_seconds: number | null }>(jc.pool, targetPressure()).then((p) => ({ active: p.active, lagSeconds: p.lag_seconds }));
      } catch {
        /* the batch below finds out whether the target is there */
      }
      const why = pressure ? pressureReason(pressure, env) : null;
      if (why) {
        pressured += 1;
        backoff('pressure');
        if (pressured === 1) log.info({ environment: env.name, jobId: job.id, reason: why }, 'backfill backing off');
        if (!(await holdLease(jc, pressureBackoffMs(pressured), why))) break;
        pacer.reset();
        continue;
      }
      pressured = 0;
      const wait = pacer.delayMs();
      if (wait > 0 && !(await holdLease(jc, wait, null))) break;

      const step = failuresMode ? await failuresStep(jc, size, transient >= TRANSIENT_ATTEMPTS) : await batchStep(jc, size);
      if (step.kind === 'stopped') return;
      if (step.kind === 'end') {
        const left = await readRemaining(jc);
        await finishJob(jc, { status: 'succeeded', remainingRows: left }, left === null ? {} : { remaining: left });
        metrics.backfillProgress.set(labels, 1);
        log.info({ environment: env.name, jobId: job.id, backfill: job.name }, 'backfill job succeeded');
        return;
      }
      if (step.kind === 'ok') {
        metrics.backfillBatchDuration.observe(labels, step.ms / 1000);
        if (step.changed) metrics.backfillRowsProcessed.inc(labels, step.changed);
        if (step.failed) metrics.backfillRowsFailed.inc(labels, step.failed);
        pacer.add(step.scanned);
        scanned += step.scanned;
        if (remaining !== null) remaining = Math.max(0, remaining - step.changed);
        transient = 0;
        unreachable = 0;
        failRemaining -= step.scanned;
        if (failRemaining <= 0) {
          failRemaining = 0;
          size = full;
        }
        if (def.remaining && !failuresMode && performance.now() - remainingAt > REMAINING_EVERY_MS) {
          await refreshRemaining();
          if (remaining === 0) {
            await finishJob(jc, { status: 'succeeded', remainingRows: 0 }, { remaining: 0, reason: 'the remaining-rows query reports nothing left to do' });
            metrics.backfillProgress.set(labels, 1);
            return;
          }
        }
        gauge();
        continue;
      }

      // A failed step.
      metrics.backfillBatchDuration.observe(labels, step.ms / 1000);
      const kind: ErrorKind = classifyError(step.err);
      if (kind === 'connection') {
        unreachable += 1;
        backoff('unreachable');
        if (unreachable === 1) log.warn({ environment: env.name, jobId: job.id, reason: describeError(step.err).message }, 'backfill target unreachable; waiting');
        if (!(await holdLease(jc, backoffMs(unreachable), 'target unreachable'))) break;
        pacer.reset();
        continue;
      }
      if (kind === 'fatal') {
        const { message, sqlstate } = describeError(step.err);
        await finishJob(jc, { status: 'failed', lastError: message }, { error: message, sqlstate });
        log.error({ environment: env.name, jobId: job.id, backfill: job.name, sqlstate, reason: message }, 'backfill job failed: its statement cannot run');
        return;
      }
      const range = step.range;
      if (range && range.n > 1) {
        // Retry the range in halves until the failing rows stand alone.
        size = Math.max(1, Math.floor(range.n / 2));
        failRemaining = Math.max(failRemaining, range.n);
        if (kind === 'transient') backoff('retry');
        continue;
      }
      if (kind === 'transient' && transient < TRANSIENT_ATTEMPTS) {
        transient += 1;
        backoff('retry');
        if (!(await holdLease(jc, backoffMs(transient), `retrying after ${describeError(step.err).sqlstate ?? 'a timeout'}`))) break;
        continue;
      }
      if (failuresMode) {
        // failuresStep records row errors itself; a persistent timeout is recorded on the next step.
        transient += 1;
        continue;
      }
      if (!range) {
        // The range query itself kept timing out (a long lock on the job or the key index): wait, do not record.
        transient = 0;
        if (!(await holdLease(jc, backoffMs(TRANSIENT_ATTEMPTS), 'waiting for a lock'))) break;
        continue;
      }
      transient = 0;
      const recorded = await recordFailure(jc, range.lo, step.err);
      if (recorded.kind === 'stopped') return;
      if (recorded.kind === 'ok') {
        metrics.backfillRowsFailed.inc(labels, 1);
        pacer.add(1);
        scanned += 1;
        // The failing row is isolated: back to full batches (another bad row
        // further on is bisected the same way), not one transaction per row
        // for the rest of the range it was found in.
        failRemaining = 0;
        size = full;
      }
    }
    // Lost the lease (paused, cancelled, taken over) or shutting down.
    if (signal.aborted) await releaseLease(jc, 0, null);
  } catch (err) {
    log.error({ environment: env.name, jobId: job.id, reason: describeError(err).message }, 'backfill job stopped unexpectedly; its lease lapses and it resumes from its checkpoint');
  } finally {
    metrics.backfillRate.set(labels, 0);
    afterwards();
  }
}
