import { exec, maybeOne, transaction } from '../../database/db.js';
import { deleteLedger, ledgerOfRun, mergeApplyState, openRollbackRequest, type RollbackRow } from '../../database/sql/apply.js';
import { rows } from '../../database/db.js';
import { appendEvent } from '../audit.js';
import { runApplicationName } from '../child-processes.js';
import type { ServiceContext } from '../context.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import type { ApplyState } from './apply-state.js';
import type { ReconcileRun } from './interrupt.js';
import { stopOrphans } from './orphans.js';
import { finishRollback, type RollbackReport } from './rollback-report.js';
import { completeRestore, restoreBackupFor, restoreCommitted } from './restore-steps.js';
import { runLogger } from './run-log.js';
import { resumeWorkers } from './workers.js';
import { verifySchemaRestored } from './schema-baseline.js';

/**
 * A run left rolling_back or restoring by a process that died: stop what it
 * left running (pg_restore, the down migration's session), then read from
 * the target what it achieved and record that, ending the run:
 *
 * - down: the run's migrations still on the target decide. None left:
 *   rolled_back. Some left: failed, naming them (a new down or a restore can
 *   be asked from there). Reverts the dead process made but had not recorded
 *   are taken out of the ledger.
 * - restore: pg_restore runs in one transaction, so the target is either the
 *   backup or untouched. The ids of the backup's tables, recorded before
 *   pg_restore started, tell which: changed ids mean it committed, and the
 *   steps after it (tables created after the backup, the ETL pause, the
 *   ledger) are finished here: restored. Unchanged: failed, target unchanged
 *   (the restore can be asked again).
 *
 * Workers paused by the rollback are resumed when it ended well, and stay
 * paused after a failure unless workers.resumeOnFailure (as for a live one).
 */
export async function reconcileRollback(ctx: ServiceContext, run: ReconcileRun & { apply_state: ApplyState }): Promise<void> {
  const env = ctx.config.environments[run.environment];
  const state = run.apply_state.rollback ?? null;
  const open = await maybeOne<RollbackRow>(ctx.control, openRollbackRequest(run.id));
  const mode: 'down' | 'restore' = run.status === 'rolling_back' ? 'down' : 'restore';
  const runLog = runLogger(ctx.control, run.id);
  const orphans = await stopOrphans(ctx, env, run.id);
  const report: RollbackReport = {
    runId: run.id, requestId: open?.id ?? state?.requestId ?? 'unknown', mode, outcome: 'failed', requestedBy: open?.requested_by ?? 'unknown',
    approvedBy: open?.decided_by ?? 'unknown', reason: open?.reason ?? '', startedAt: run.updated_at.toISOString(), finishedAt: '',
    reverted: [], backupId: state?.backupId ?? null, dropped: [], checks: [], failure: null,
    reconciliation: { at: new Date().toISOString(), phase: state?.phase ?? null, orphans },
    notes: [`The process running this ${mode} stopped${state?.phase ? ` (${state.phase})` : ''}; this report is what a reconciler found on the target.`],
  };
  const end = async (failure: { code: string; message: string } | null) => {
    report.failure = failure;
    report.outcome = failure ? 'failed' : 'succeeded';
    report.finishedAt = new Date().toISOString();
    const pause = state?.workers;
    if (env && pause && (!failure || env.workers.resumeOnFailure)) {
      try {
        await resumeWorkers(pause, {
          environment: env, targetUrl: ctx.targets.url(env), runId: run.id, actor: 'system', reason: `${mode} ${report.outcome} (reconciled)`, log: runLog.phase('workers'),
          applicationName: runApplicationName(run.id, 'resume'), adopt: run.apply_state.pauses,
        });
        report.notes.push('Workers the rollback had paused were resumed.');
      } catch (err) {
        report.notes.push(`Resuming workers failed: ${(err as Error).message}`);
      }
    } else if (pause) {
      report.notes.push('Workers stay paused after the failure (workers.resumeOnFailure is off): resume them once the target is safe.');
    }
    await runLog.write(mode === 'down' ? 'rollback' : 'restore', failure ? 'error' : 'info', `reconciled after the process stopped: ${failure ? failure.message : `${mode} complete`}`);
    await runLog.flush();
    await finishRollback(ctx.control, run, report.requestId, mode, report, run.lease_owner ?? null);
  };
  if (!env || !orphans.target.reachable) {
    // Nothing can be read; the run stays in flight and the next sweep tries again.
    throw new Error(`cannot reconcile the ${mode} of run ${run.id}: ${orphans.target.error ?? 'the target is unreachable'}`);
  }
  const onTarget = new Set((await ctx.targets.withClient(env, (client) => readAppliedMigrations(client, env))).map((m) => m.name));
  const still = run.migrations.filter((m) => onTarget.has(m.name)).map((m) => m.name);

  if (mode === 'down') {
    const ledger = new Set((await rows<{ name: string }>(ctx.control, ledgerOfRun(run.id))).map((l) => l.name));
    const unrecorded = run.migrations.filter((m) => ledger.has(m.name) && !onTarget.has(m.name)).map((m) => m.name);
    await transaction(ctx.control, async (client) => {
      for (const name of unrecorded) await exec(client, deleteLedger(run.environment, name));
      await exec(client, mergeApplyState(run.id, { applied: still }));
      if (unrecorded.length) await appendEvent(client, { runId: run.id, environment: run.environment, type: 'ledger.reconciled', actor: 'system', details: { reverted: unrecorded } });
    });
    report.reconciliation!.stillApplied = still;
    report.reconciliation!.revertedByDeadProcess = unrecorded;
    report.checks.push({ id: 'migrations-removed', status: still.length ? 'fail' : 'pass', detail: still.length ? `${env.migrationsTable} still lists ${still.join(', ')}.` : `${env.migrationsTable} no longer lists any of the run's migrations.` });
    if (still.length) {
      return end({ code: 'rollback-interrupted', message: `The rollback stopped part-way: ${still.join(', ')} ${still.length === 1 ? 'is' : 'are'} still applied on the target. Ask for another rollback (mode "down") or a restore.` });
    }
    // As a live rollback does: the rows gone are not yet the schema back.
    const schema = await verifySchemaRestored(ctx, run, env);
    if (schema) report.checks.push(schema.check);
    if (schema?.failure) return end(schema.failure);
    return end(null);
  }

  const committed = state?.phase === 'cleanup' || state?.phase === 'verify' ? true : state?.phase === 'restore' ? await restoreCommitted(ctx, env, state.restoreOids) : false;
  report.reconciliation!.restoreCommitted = committed;
  if (committed === false) {
    return end({ code: 'restore-interrupted', message: `The restore stopped before pg_restore committed (${state?.phase === 'restore' ? 'it runs in one transaction, which was rolled back' : 'it had not started'}): the target is unchanged. Ask for the restore again.` });
  }
  if (committed === null) {
    return end({ code: 'restore-interrupted', message: 'The restore stopped while pg_restore ran, and the backup holds no table whose id would show whether it committed: the target is either the backup or unchanged. Ask for the restore again (it is safe to repeat).' });
  }
  const record = await restoreBackupFor(ctx, run);
  if (!record) return end({ code: 'restore-incomplete', message: 'pg_restore committed, but the backup record is gone: check the target by hand.' });
  try {
    const done = await completeRestore(ctx, env, run, record, state?.workers ?? null, 'system', runLog.phase('restore'));
    report.dropped = done.dropped;
    report.etl = done.etl;
    report.notes.push(`ETL: ${done.etl.action}.`);
  } catch (err) {
    return end({ code: 'restore-incomplete', message: `pg_restore committed, but finishing the restore failed: ${(err as Error).message}. Ask for the restore again.` });
  }
  const left = still;
  report.checks.push({ id: 'migrations-removed', status: left.length ? 'fail' : 'pass', detail: left.length ? `${env.migrationsTable} still lists ${left.join(', ')}.` : `${env.migrationsTable} no longer lists any of the run's migrations.` });
  if (left.length) return end({ code: 'verification-failed', message: `After the restore, ${left.join(', ')} is still recorded on the target.` });
  return end(null);
}
