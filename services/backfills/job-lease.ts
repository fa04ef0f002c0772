import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { exec } from '../../database/db.js';
import { releaseJobLease, renewJobLease } from '../../database/sql/backfill-leases.js';
import type { JobContext } from './job-step.js';
import { describeError } from './pacing.js';

// A running job keeps its lease by renewing it: while it waits (pacing,
// back-off) as well as in every batch's checkpoint, so a live process never
// loses its job to another one, and a dead one's lease lapses.

/** Sleeps `ms` in heartbeats that renew the lease; false when the job must stop (lease lost, or shutting down). */
export async function holdLease(jc: JobContext, ms: number, waiting: string | null): Promise<boolean> {
  const { job, owner, leaseMs, signal } = jc;
  const until = performance.now() + ms;
  for (;;) {
    try {
      const renewed = await exec(jc.pool, renewJobLease(job.id, owner, leaseMs, waiting));
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

/** Gives the job back; nobody claims it before `notBeforeMs` from now. */
export async function releaseLease(jc: JobContext, notBeforeMs: number, waiting: string | null): Promise<void> {
  const { env, job, owner } = jc;
  await exec(jc.pool, releaseJobLease(job.id, owner, notBeforeMs, waiting)).catch((err) =>
    jc.log.warn({ environment: env.name, jobId: job.id, reason: describeError(err).message }, 'could not release a backfill lease; it lapses on its own'));
}
