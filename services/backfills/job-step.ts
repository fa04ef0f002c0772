import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { exec, maybeOne } from '../../database/db.js';
import { batchSettings } from '../../database/sql/backfill-batches.js';
import { lockJob, setJobStatus, type JobRow, type StatusPatch } from '../../database/sql/backfill-jobs.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { Logger } from '../logger.js';
import { EXECUTOR_ACTOR } from './executor-identity.js';
import type { Pacer } from './pacing.js';
import { appendBackfillEvent } from './store.js';

/** What one claimed job's steps share: the job as claimed, its target and this process as its lease owner. */
export interface JobContext {
  env: EnvironmentConfig;
  job: JobRow;
  pool: pg.Pool;
  owner: string;
  leaseMs: number;
  /** The session name of the job's batches, so operators can tell whose they are. */
  appName: string;
  pacer: Pacer;
  signal: AbortSignal;
  log: Logger;
}

export interface KeyRange { lo: string; hi: string; n: number }

export type Step =
  | { kind: 'ok'; scanned: number; changed: number; failed: number; ms: number }
  | { kind: 'end' }
  | { kind: 'stopped' }
  | { kind: 'error'; err: unknown; range: KeyRange | null; ms: number };

/**
 * One short transaction on the target with the batch's lock_timeout and
 * statement_timeout, holding the job row, and only while this process
 * still owns the running job (else 'stopped', nothing done). `body`'s
 * work commits unless it reports 'end'; anything it throws rolls it back.
 */
export async function jobStep(
  jc: JobContext,
  body: (client: pg.PoolClient, locked: JobRow, started: number) => Promise<Step>,
  rangeOnError: () => KeyRange | null = () => null,
): Promise<Step> {
  const { env, job, owner } = jc;
  const client = await jc.pool.connect();
  const started = performance.now();
  try {
    await client.query('BEGIN');
    await exec(client, batchSettings(env.lockTimeoutMs, env.statementTimeoutMs, jc.appName));
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

/** A status change of the job with its audit event, in one transaction, while this process owns it. */
export async function finishJob(jc: JobContext, patch: StatusPatch, details: Record<string, unknown>): Promise<boolean> {
  const { env, job, owner } = jc;
  const step = await jobStep(jc, async (client, locked, started) => {
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
