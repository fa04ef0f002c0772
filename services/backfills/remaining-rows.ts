import { exec, one } from '../../database/db.js';
import { noteRemaining } from '../../database/sql/backfill-batches.js';
import { runRemaining } from '../../database/sql/backfill-definition.js';
import { timedRead } from '../metrics/time-box.js';
import type { JobContext } from './job-step.js';
import { describeError } from './pacing.js';

/** The definition's remaining-rows count now; null without that query, for a failures-only job, or when it fails. */
export async function readRemaining(jc: JobContext): Promise<number | null> {
  const { env, job } = jc;
  const def = job.definition;
  if (!def.remaining || job.failures_of !== null) return null;
  const client = await jc.pool.connect();
  try {
    const row = await timedRead(client, Math.min(env.statementTimeoutMs, 60_000), env.lockTimeoutMs, (c) => one<Record<string, unknown>>(c, runRemaining(def.remaining!)));
    const value = Number(Object.values(row)[0]);
    return Number.isFinite(value) ? value : null;
  } catch (err) {
    jc.log.warn({ environment: env.name, jobId: job.id, reason: describeError(err).message }, 'backfill remaining-rows query failed; progress is estimated');
    return null;
  } finally {
    client.release();
  }
}

/** Keeps the count on the job row (the API's progress), while this process owns the job; a failed write waits for the next count. */
export async function storeRemaining(jc: JobContext, remaining: number): Promise<void> {
  await exec(jc.pool, noteRemaining(jc.job.id, jc.owner, remaining)).catch(() => undefined);
}
