import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { closePool, createPool, exec, maybeOne, one, rows, transaction } from '../../database/db.js';
import { describeConnectionError } from '../../database/pg-errors.js';
import {
  batchSettings, checkpoint, insertFailure, lockClaimable, lockJob, nextKeyRange, nextOpenFailures, noteRemaining, noteWaiting,
  releaseJobLease, renewJobLease, resolveFailure, runBatch, runRemaining, setJobStatus, takeJobLease, targetPressure,
  type JobRow, type StatusPatch,
} from '../../database/sql/backfills.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import { timedRead } from '../metrics/time-box.js';
import {
  backoffMs, classifyError, describeError, effectiveBatchSize, Pacer, pressureBackoffMs, pressureReason, windowGate, type ErrorKind, type Pressure,
} from './pacing.js';
import { appendBackfillEvent, mirrorEvents, progressOf, schemaExists } from './store.js';

/** The actor of the executor's own audit events (details.owner says which process). */
export const EXECUTOR_ACTOR = 'backfills';
export const APPLICATION_NAME = 'starforge-backfill';
/** How often an idle executor looks for claimable jobs. */
const POLL_MS = 1000;
/** How often the executor copies target audit events nobody copied yet (after a crash, or with the control DB down). */
const SWEEP_EVERY_MS = 30_000;
/** How often a running job re-reads its definition's remaining-rows count. */
const REMAINING_EVERY_MS = 30_000;
/** A single row hitting a lock or statement timeout this often is recorded as failed and skipped. */
const TRANSIENT_ATTEMPTS = 3;

type Step =
  | { kind: 'ok'; scanned: number; changed: number; failed: number; ms: number }
  | { kind: 'end' }
  | { kind: 'stopped' }
  | { kind: 'error'; err: unknown; range: { lo: string; hi: string; n: number } | null; ms: number };

/**
 * The backfill executor: one loop per process (BACKFILLS on) that claims
 * jobs on every configured target and runs them batch by batch.
 *
 * Who runs a job is decided on the target: a claim takes the job row with
 * FOR UPDATE SKIP LOCKED among jobs whose lease lapsed, then writes this
 * process as lease owner; every batch transaction locks the job row again and
 * goes on only while this process still owns a running job, and renews the
 * lease in its checkpoint. So two processes never run one job at once, and a
 * process that died (kill -9) leaves a lease that lapses, after which
 * another process resumes from the last committed checkpoint.
 */
export function createBackfillExecutor(ctx: ServiceContext) {
  const { config, control, log, metrics, targets } = ctx;
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const leaseMs = config.backfillLeaseSeconds * 1000;
  const pools = new Map<string, pg.Pool>();
  const active = new Map<string, Promise<void>>();
  const lastProblem = new Map<string, string>();
  const lastSweep = new Map<string, number>();
  let controller: AbortController | null = null;
  let loop: Promise<void> | null = null;

  function poolOf(env: EnvironmentConfig): pg.Pool {
    let pool = pools.get(env.name);
    if (!pool) {
      pool = createPool(targets.url(env), {
        max: 3,
        applicationName: APPLICATION_NAME,
        onError: (err) => log.warn({ environment: env.name, reason: describeConnectionError(err) }, 'backfill: target connection lost'),
      });
      pools.set(env.name, pool);
    }
    return pool;
  }

  /** Logs a problem of an environment once, until it changes or clears. */
  function note(env: EnvironmentConfig, problem: string | null, err?: unknown): void {
    const previous = lastProblem.get(env.name) ?? null;
    if (previous === problem) return;
    if (problem === null) {
      lastProblem.delete(env.name);
      log.info({ environment: env.name }, 'backfill executor: target answers again');
      return;
    }
    lastProblem.set(env.name, problem);
    log.warn({ environment: env.name, reason: problem, ...(err ? { sqlstate: (err as { code?: string }).code } : {}) }, 'backfill executor: cannot work on this environment; retrying');
  }

  /** Copies this target's uncopied audit events to the control database (errors logged; the next sweep retries). */
  async function flush(env: EnvironmentConfig): Promise<void> {
    try {
      const client = await poolOf(env).connect();
      try {
        if (await schemaExists(client)) while ((await mirrorEvents(client, control)) > 0) { /* until none is left */ }
      } finally {
        client.release();
      }
      lastSweep.set(env.name, Date.now());
    } catch (err) {
      log.warn({ environment: env.name, reason: describeError(err).message }, 'backfill audit events not copied to the control database yet; retrying at the next sweep');
    }
  }

  // ---------------------------------------------------------------- claim

  async function claim(env: EnvironmentConfig): Promise<JobRow | null> {
    return transaction(poolOf(env), async (client) => {
      if (!(await schemaExists(client))) return null;
      await exec(client, batchSettings(env.lockTimeoutMs, 10_000, APPLICATION_NAME));
      const job = await maybeOne<JobRow>(client, lockClaimable());
      if (!job) return null;
      // A windowOnly job outside its windows stays as it is (pending or
      // running), says why, and is not looked at again before the window opens.
      const gate = windowGate(env, job.window_only, new Date());
      if (!gate.open) {
        await exec(client, noteWaiting(job.id, gate.reason, gate.retryInMs));
        return null;
      }
      let row = await one<JobRow>(client, takeJobLease(job.id, owner, leaseMs));
      if (job.status === 'pending') {
        row = await one<JobRow>(client, setJobStatus(job.id, { status: 'running', started: true }));
        await appendBackfillEvent(client, {
          jobId: job.id, environment: env.name, type: 'backfill.running', actor: EXECUTOR_ACTOR, from: 'pending', to: 'running',
          details: { name: job.name, owner },
        });
      } else if (job.lease_owner !== null) {
        // The previous executor stopped renewing (its process died): resume from its checkpoint.
        await appendBackfillEvent(client, {
          jobId: job.id, environment: env.name, type: 'backfill.running', actor: EXECUTOR_ACTOR, from: 'running', to: 'running',
          details: { name: job.name, owner, takeover: true, previousOwner: job.lease_owner, lastKey: job.last_key, rowsDone: Number(job.rows_done) },
        });
      }
      return row;
    });
  }

  // ---------------------------------------------------------------- one job

  async function runJob(env: EnvironmentConfig, job: JobRow, signal: AbortSignal): Promise<void> {
    const pool = poolOf(env);
    const def = job.definition;
    const labels = { environment: env.name, backfill: job.name };
    const failuresMode = job.failures_of !== null;
    const full = effectiveBatchSize(job.batch_size, job.max_rows_per_second);
    const pacer = new Pacer(job.max_rows_per_second);
    const appName = `${APPLICATION_NAME} ${job.name} ${owner}`;
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

    /** Sleeps `ms` in heartbeats that renew the lease; false when the job must stop (lease lost, or shutting down). */
    async function hold(ms: number, waiting: string | null): Promise<boolean> {
      const until = performance.now() + ms;
      for (;;) {
        try {
          const renewed = await exec(pool, renewJobLease(job.id, owner, leaseMs, waiting));
          if (renewed === 0) return false;
        } catch {
          /* the target is away: the lease may lapse, and the next batch's lease check decides */
        }
        const left = until - performance.now();
        if (left <= 0) return !signal.aborted;
        try {
          await sleep(Math.min(left, leaseMs / 3), undefined, { signal });
        } catch {
          return false;
        }
      }
    }

    async function release(notBeforeMs: number, waiting: string | null): Promise<void> {
      await exec(pool, releaseJobLease(job.id, owner, notBeforeMs, waiting)).catch((err) =>
        log.warn({ environment: env.name, jobId: job.id, reason: describeError(err).message }, 'could not release a backfill lease; it lapses on its own'));
    }

    /** A status change of the job with its audit event, in one transaction, while this process owns it. */
    async function finish(patch: StatusPatch, details: Record<string, unknown>): Promise<boolean> {
      const step = await jobStep(async (client, locked, started) => {
        await exec(client, setJobStatus(job.id, { ...patch, finished: true, clearLease: true }));
        await appendBackfillEvent(client, {
          jobId: job.id, environment: env.name, type: `backfill.${patch.status}`, actor: EXECUTOR_ACTOR, from: 'running', to: patch.status,
          details: { name: job.name, owner, rowsDone: Number(locked.rows_done), rowsFailed: Number(locked.rows_failed), rowsScanned: Number(locked.rows_scanned), lastKey: locked.last_key, ...details },
        });
        return { kind: 'ok', scanned: 0, changed: 0, failed: 0, ms: performance.now() - started };
      });
      if (step.kind === 'error') throw step.err;
      return step.kind === 'ok';
    }

    async function readRemaining(): Promise<number | null> {
      if (!def.remaining || failuresMode) return null;
      const client = await pool.connect();
      try {
        const row = await timedRead(client, Math.min(env.statementTimeoutMs, 60_000), env.lockTimeoutMs, (c) => one<Record<string, unknown>>(c, runRemaining(def.remaining!)));
        const value = Number(Object.values(row)[0]);
        return Number.isFinite(value) ? value : null;
      } catch (err) {
        log.warn({ environment: env.name, jobId: job.id, reason: describeError(err).message }, 'backfill remaining-rows query failed; progress is estimated');
        return null;
      } finally {
        client.release();
      }
    }

    async function refreshRemaining(): Promise<void> {
      remaining = await readRemaining();
      remainingAt = performance.now();
      if (remaining !== null) await exec(pool, noteRemaining(job.id, owner, remaining)).catch(() => undefined);
    }

    /**
     * One short transaction on the target with the batch's lock_timeout and
     * statement_timeout, holding the job row, and only while this process
     * still owns the running job (else 'stopped', nothing done). `body`'s
     * work commits unless it reports 'end'; anything it throws rolls it back.
     */
    async function jobStep(body: (client: pg.PoolClient, locked: JobRow, started: number) => Promise<Step>, rangeOnError: () => { lo: string; hi: string; n: number } | null = () => null): Promise<Step> {
      const client = await pool.connect();
      const started = performance.now();
      try {
        await client.query('BEGIN');
        await exec(client, batchSettings(env.lockTimeoutMs, env.statementTimeoutMs, appName));
        const locked = await maybeOne<JobRow>(client, lockJob(job.id));
        if (!locked || locked.status !== 'running' || locked.lease_owner !== owner) {
          await client.query('ROLLBACK');
          return { kind: 'stopped' };
        }
        const step = await body(client, locked, started);
        await client.query(step.kind === 'end' ? 'ROLLBACK' : 'COMMIT');
        return step;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        return { kind: 'error', err, range: rangeOnError(), ms: performance.now() - started };
      } finally {
        client.release();
      }
    }

    // One keyset batch: lock the job (still ours?), find the next key range,
    // run the definition's statement over it and move the checkpoint, all in
    // one transaction: it commits whole or not at all.
    async function batchStep(limit: number): Promise<Step> {
      let range: { lo: string; hi: string; n: number } | null = null;
      return jobStep(async (client, locked, started) => {
        const next = await one<{ lo: string | null; hi: string | null; n: number }>(client, nextKeyRange(def.table, def.keyColumn, locked.last_key, limit));
        if (next.n === 0 || next.lo === null || next.hi === null) return { kind: 'end' };
        range = { lo: next.lo, hi: next.hi, n: next.n };
        const changed = await exec(client, runBatch(def.batch, range.lo, range.hi));
        await exec(client, checkpoint({
          id: job.id, owner, leaseMs, lastKey: range.hi, rowsDone: changed, rowsFailed: 0, rowsScanned: range.n,
          rowsPerSecond: pacer.rate(), batchMs: performance.now() - started,
        }));
        return { kind: 'ok', scanned: range.n, changed, failed: 0, ms: performance.now() - started };
      }, () => range);
    }

    /** Records the one row of a failed single-row batch and moves the checkpoint past it, in one transaction. */
    async function recordFailure(key: string, err: unknown): Promise<Step> {
      const { message, sqlstate } = describeError(err);
      const step = await jobStep(async (client, _locked, started) => {
        await exec(client, insertFailure(job.id, key, message, sqlstate));
        await exec(client, checkpoint({ id: job.id, owner, leaseMs, lastKey: key, rowsDone: 0, rowsFailed: 1, rowsScanned: 1, rowsPerSecond: pacer.rate(), batchMs: 0 }));
        return { kind: 'ok', scanned: 1, changed: 0, failed: 1, ms: performance.now() - started };
      });
      if (step.kind === 'ok') log.warn({ environment: env.name, jobId: job.id, backfill: job.name, key, sqlstate }, 'backfill row failed alone: recorded and skipped');
      return step;
    }

    // A failures-only job: the source job's unresolved failed keys, each in a
    // savepoint of one short transaction; a fixed row resolves its failure, a
    // row failing again is recorded under this job.
    async function failuresStep(limit: number, recordTransient: boolean): Promise<Step> {
      return jobStep(async (client, locked, started) => {
        const cursor = Number(locked.last_key ?? 0);
        const items = await rows<{ id: string; key: string }>(client, nextOpenFailures(job.failures_of!, cursor, limit));
        if (!items.length) return { kind: 'end' };
        let changed = 0;
        let failed = 0;
        let last = cursor;
        let stop: unknown = null;
        for (const item of items) {
          await client.query('SAVEPOINT one_row');
          try {
            changed += await exec(client, runBatch(def.batch, item.key, item.key));
            await client.query('RELEASE SAVEPOINT one_row');
            await exec(client, resolveFailure(item.id, job.id));
          } catch (err) {
            await client.query('ROLLBACK TO SAVEPOINT one_row');
            const kind = classifyError(err);
            if (kind === 'row' || (kind === 'transient' && recordTransient)) {
              const { message, sqlstate } = describeError(err);
              await exec(client, insertFailure(job.id, item.key, message, sqlstate));
              failed += 1;
            } else {
              stop = err;
              break;
            }
          }
          last = Number(item.id);
        }
        const done = last > cursor ? items.filter((i) => Number(i.id) <= last).length : 0;
        if (done > 0) {
          await exec(client, checkpoint({
            id: job.id, owner, leaseMs, lastKey: String(last), rowsDone: changed, rowsFailed: failed, rowsScanned: done,
            rowsPerSecond: pacer.rate(), batchMs: performance.now() - started,
          }));
        }
        // The rows before a row that stopped the step stay done (committed).
        if (stop !== null) return { kind: 'error', err: stop, range: null, ms: performance.now() - started };
        return { kind: 'ok', scanned: done, changed, failed, ms: performance.now() - started };
      });
    }

    const backoff = (reason: 'pressure' | 'retry' | 'unreachable') => metrics.backfillBackoffs.inc({ ...labels, reason });

    try {
      if (!failuresMode && def.remaining) {
        await refreshRemaining();
        if (remaining === 0) {
          await finish({ status: 'succeeded', remainingRows: 0 }, { remaining: 0, reason: 'the remaining-rows query reports nothing left to do' });
          metrics.backfillProgress.set(labels, 1);
          return;
        }
      }
      for (;;) {
        if (signal.aborted) {
          await release(0, null);
          return;
        }
        const gate = windowGate(env, job.window_only, new Date());
        if (!gate.open) {
          await release(gate.retryInMs, gate.reason);
          return;
        }
        let pressure: Pressure | null = null;
        try {
          pressure = await one<{ active: number; lag_seconds: number | null }>(pool, targetPressure()).then((p) => ({ active: p.active, lagSeconds: p.lag_seconds }));
        } catch {
          /* the batch below finds out whether the target is there */
        }
        const why = pressure ? pressureReason(pressure, env) : null;
        if (why) {
          pressured += 1;
          backoff('pressure');
          if (pressured === 1) log.info({ environment: env.name, jobId: job.id, reason: why }, 'backfill backing off');
          if (!(await hold(pressureBackoffMs(pressured), why))) break;
          pacer.reset();
          continue;
        }
        pressured = 0;
        const wait = pacer.delayMs();
        if (wait > 0 && !(await hold(wait, null))) break;

        const step = failuresMode ? await failuresStep(size, transient >= TRANSIENT_ATTEMPTS) : await batchStep(size);
        if (step.kind === 'stopped') return;
        if (step.kind === 'end') {
          const left = await readRemaining();
          await finish({ status: 'succeeded', remainingRows: left }, left === null ? {} : { remaining: left });
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
              await finish({ status: 'succeeded', remainingRows: 0 }, { remaining: 0, reason: 'the remaining-rows query reports nothing left to do' });
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
          if (!(await hold(backoffMs(unreachable), 'target unreachable'))) break;
          pacer.reset();
          continue;
        }
        if (kind === 'fatal') {
          const { message, sqlstate } = describeError(step.err);
          await finish({ status: 'failed', lastError: message }, { error: message, sqlstate });
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
          if (!(await hold(backoffMs(transient), `retrying after ${describeError(step.err).sqlstate ?? 'a timeout'}`))) break;
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
          if (!(await hold(backoffMs(TRANSIENT_ATTEMPTS), 'waiting for a lock'))) break;
          continue;
        }
        transient = 0;
        const recorded = await recordFailure(range.lo, step.err);
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
      if (signal.aborted) await release(0, null);
    } catch (err) {
      log.error({ environment: env.name, jobId: job.id, reason: describeError(err).message }, 'backfill job stopped unexpectedly; its lease lapses and it resumes from its checkpoint');
    } finally {
      metrics.backfillRate.set(labels, 0);
      void flush(env);
    }
  }

  // ---------------------------------------------------------------- the loop

  async function tick(signal: AbortSignal): Promise<void> {
    for (const env of Object.values(config.environments)) {
      if (signal.aborted) return;
      if (!targets.isConfigured(env.name)) continue;
      try {
        if (Date.now() - (lastSweep.get(env.name) ?? 0) > SWEEP_EVERY_MS) await flush(env);
        if (!active.has(env.name)) {
          const job = await claim(env);
          if (job) {
            await flush(env);
            const run = runJob(env, job, signal).finally(() => active.delete(env.name));
            active.set(env.name, run);
          }
        }
        note(env, null);
      } catch (err) {
        note(env, describeError(err).message, err);
      }
    }
  }

  async function run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await tick(signal);
      await sleep(POLL_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  return {
    owner,
    flush,
    /** Starts the loop (nothing when BACKFILLS is off); idempotent. */
    start(): void {
      if (!config.backfills || controller) return;
      controller = new AbortController();
      loop = run(controller.signal);
      log.info({ owner, leaseSeconds: config.backfillLeaseSeconds }, 'backfill executor started');
    },
    /** Stops claiming, lets each running job finish its batch and give its lease back, closes its pools. Idempotent. */
    async stop(): Promise<void> {
      controller?.abort();
      controller = null;
      await loop;
      loop = null;
      await Promise.allSettled([...active.values()]);
      const open = [...pools.values()];
      pools.clear();
      await Promise.all(open.map((p) => closePool(p).catch(() => undefined)));
    },
    /** Environments with a job executing in this process now. */
    executing(): string[] {
      return [...active.keys()];
    },
    get running(): boolean {
      return controller !== null;
    },
  };
}

export type BackfillExecutor = ReturnType<typeof createBackfillExecutor>;
