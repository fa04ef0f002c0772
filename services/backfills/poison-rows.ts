import { performance } from 'node:perf_hooks';
import { exec, rows } from '../../database/db.js';
import { checkpoint } from '../../database/sql/backfill-batches.js';
import { runBatch } from '../../database/sql/backfill-definition.js';
import { insertFailure, nextOpenFailures, resolveFailure } from '../../database/sql/backfill-failures.js';
import { jobStep, type JobContext, type Step } from './job-step.js';
import { classifyError, describeError } from './pacing.js';

// Rows a batch cannot change are set aside one key at a time, so the rest of
// the job goes on; a failures-only job later retries just those keys.

/** Records the one row of a failed single-row batch and moves the checkpoint past it, in one transaction. */
export async function recordFailure(jc: JobContext, key: string, err: unknown): Promise<Step> {
  const { env, job, owner, leaseMs, pacer } = jc;
  const { message, sqlstate } = describeError(err);
  const step = await jobStep(jc, async (client, _locked, started) => {
    await exec(client, insertFailure(job.id, key, message, sqlstate));
    await exec(client, checkpoint({ id: job.id, owner, leaseMs, lastKey: key, rowsDone: 0, rowsFailed: 1, rowsScanned: 1, rowsPerSecond: pacer.rate(), batchMs: 0 }));
    return { kind: 'ok', scanned: 1, changed: 0, failed: 1, ms: performance.now() - started };
  });
  if (step.kind === 'ok') jc.log.warn({ environment: env.name, jobId: job.id, backfill: job.name, key, sqlstate }, 'backfill row failed alone: recorded and skipped');
  return step;
}

// A failures-only job: the source job's unresolved failed keys, each in a
// savepoint of one short transaction; a fixed row resolves its failure, a
// row failing again is recorded under this job.
export async function failuresStep(jc: JobContext, limit: number, recordTransient: boolean): Promise<Step> {
  const { job, owner, leaseMs, pacer } = jc;
  const def = job.definition;
  return jobStep(jc, async (client, locked, started) => {
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
