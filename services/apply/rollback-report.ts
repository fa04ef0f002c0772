import type pg from 'pg';
import { exec, transaction } from '../../database/db.js';
import { finishRollbackRequest, mergeApplyState } from '../../database/sql/apply.js';
import { insertReport } from '../../database/sql/reports.js';
import { dropLease } from '../../database/sql/scheduler.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import type { AppliedStep } from './migrate.js';
import type { Orphans } from './reconcile-types.js';
import type { EtlAfterRestore } from './restore-steps.js';

export interface RollbackReport {
  runId: string;
  requestId: string;
  mode: 'down' | 'restore';
  outcome: 'succeeded' | 'failed';
  requestedBy: string;
  approvedBy: string;
  reason: string;
  startedAt: string;
  finishedAt: string;
  reverted: AppliedStep[];
  backupId: string | null;
  /** Tables created after the backup and dropped by the restore. */
  dropped: string[];
  /** Restore: what etl_control the backup brought back and what the restore made of it. */
  etl?: EtlAfterRestore | null;
  checks: Array<{ id: string; status: 'pass' | 'fail'; detail: string }>;
  failure: { code: string; message: string } | null;
  /** Set when the process running the rollback died and a reconciler ended it: what it found on the target. */
  reconciliation?: {
    at: string;
    phase: string | null;
    orphans: Orphans;
    /** restore: whether pg_restore had committed (null: cannot be told). down: the run's migrations still on the target. */
    restoreCommitted?: boolean | null;
    stillApplied?: string[];
    revertedByDeadProcess?: string[];
  };
  notes: string[];
}

/**
 * Stores the rollback report, closes the request and moves the run to its
 * end status: one transaction with the audit event. The run's rollback
 * bookkeeping is cleared and its lease dropped.
 */
export async function finishRollback(control: pg.Pool, run: { id: string; digest: string }, requestId: string, mode: 'down' | 'restore', report: RollbackReport, leaseOwner: string | null): Promise<void> {
  const failure = report.failure;
  const to: RunStatus = failure ? 'failed' : mode === 'down' ? 'rolled_back' : 'restored';
  await transaction(control, async (client) => {
    const locked = await lockRunForUpdate(client, run.id);
    await exec(client, insertReport(run.id, 'rollback', run.digest, report));
    await exec(client, finishRollbackRequest(requestId, failure ? 'failed' : 'succeeded', failure));
    await exec(client, mergeApplyState(run.id, { rollback: null }));
    await transition(client, locked, to, {
      actor: 'system', details: { requestId, failure, ...(report.reconciliation ? { reconciled: true } : {}) }, patch: failure ? { error: failure } : {},
      expect: [mode === 'down' ? 'rolling_back' : 'restoring'],
    });
    if (leaseOwner) await exec(client, dropLease(run.id, leaseOwner));
  });
}
