import { performance } from 'node:perf_hooks';
import { exec, one } from '../../database/db.js';
import { checkpoint } from '../../database/sql/backfill-batches.js';
import { nextKeyRange, runBatch } from '../../database/sql/backfill-definition.js';
import { jobStep, type JobContext, type KeyRange, type Step } from './job-step.js';

// One keyset batch: lock the job (still ours?), find the next key range,
// run the definition's statement over it and move the checkpoint, all in
// one transaction: it commits whole or not at all.
export async function batchStep(jc: JobContext, limit: number): Promise<Step> {
  const { job, owner, leaseMs, pacer } = jc;
  const def = job.definition;
  let range: KeyRange | null = null;
  return jobStep(jc, async (client, locked, started) => {
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
