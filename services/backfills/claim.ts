import type pg from 'pg';
import { exec, maybeOne, one, transaction } from '../../database/db.js';
import { batchSettings } from '../../database/sql/backfill-batches.js';
import { setJobStatus, type JobRow } from '../../database/sql/backfill-jobs.js';
import { lockClaimable, noteWaiting, takeJobLease } from '../../database/sql/backfill-leases.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { APPLICATION_NAME, EXECUTOR_ACTOR } from './executor-identity.js';
import { windowGate } from './pacing.js';
import { appendBackfillEvent, schemaExists } from './store.js';

/**
 * Claims the oldest job of `env` whose lease lapsed, as `owner` for `leaseMs`,
 * in one transaction on the target (SKIP LOCKED: replicas never take one job
 * twice); null when there is none to run now.
 */
export async function claimJob(env: EnvironmentConfig, pool: pg.Pool, owner: string, leaseMs: number): Promise<JobRow | null> {
  return transaction(pool, async (client) => {
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
