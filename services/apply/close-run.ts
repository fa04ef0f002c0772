import { exec, maybeOne, rows, transaction } from '../../database/db.js';
import { ledgerOfRun, mergeApplyState, openRollbackRequest } from '../../database/sql/apply.js';
import { selectRun } from '../../database/sql/runs.js';
import { runApplicationName } from '../child-processes.js';
import type { ServiceContext } from '../context.js';
import { conflict, notFound, unavailable } from '../errors.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import type { Principal } from '../principal.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import type { ApplyState } from './apply-state.js';
import { removePartialBackup, type ReconcileRun } from './interrupt.js';
import { LEGACY_APPLY_APPLICATIONS, stopOrphans } from './orphans.js';
import { tryLockRun } from './run-lock.js';
import { runLogger } from './run-log.js';
import { liftOwnPause, resumeWorkers } from './workers.js';

export interface CloseOutcome {
  /** What was checked: the run's migrations on the target and in the ledger (both empty, or the close is refused). */
  checked: { target: string[]; ledger: string[] };
  terminatedSessions: number;
  killedProcesses: number;
  workers: string;
  partialBackupRemoved: string | null;
}

/**
 * interrupted -> failed, when it is proven that nothing of the run landed:
 * neither the target's migrations table nor the ledger lists any of its
 * migrations, checked now, after stopping whatever the dead attempt left
 * running. No restore is needed (and none is made: a restore would discard
 * every write since the backup). The ETL pause the run made is lifted. A run
 * of which something landed is refused with 409 naming it.
 */
export async function closeInterrupted(ctx: ServiceContext, runId: string, principal: Principal, reason: string): Promise<CloseOutcome> {
  const run = await maybeOne<ReconcileRun & { apply_state: ApplyState }>(ctx.control, selectRun(runId));
  if (!run) throw notFound(`Run ${runId} does not exist.`);
  if (run.status !== 'interrupted') {
    throw conflict(`Run ${runId} is ${run.status}; only an interrupted run can be closed (a run still in flight is reconciled first).`, { currentStatus: run.status });
  }
  const env = ctx.config.environments[run.environment];
  if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
  if (await maybeOne(ctx.control, openRollbackRequest(runId))) throw conflict(`Run ${runId} has an open rollback or restore request; decide it before closing the run.`);
  const lock = await tryLockRun(ctx.control, runId);
  if (!lock) throw conflict(`Run ${runId} is being worked on by another process; try again shortly.`);
  try {
    const orphans = await stopOrphans(ctx, env, runId, LEGACY_APPLY_APPLICATIONS);
    if (!orphans.target.reachable) {
      throw unavailable(`Cannot prove that nothing of run ${runId} landed: ${orphans.target.error} Nothing was changed; close it once the target answers.`);
    }
    const onTarget = new Set((await ctx.targets.withClient(env, (client) => readAppliedMigrations(client, env))).map((m) => m.name));
    const target = run.migrations.filter((m) => onTarget.has(m.name)).map((m) => m.name);
    const ledger = (await rows<{ name: string }>(ctx.control, ledgerOfRun(runId))).map((l) => l.name);
    if (target.length || ledger.length) {
      const what = [target.length ? `on the target: ${target.join(', ')}` : null, ledger.length ? `in the ledger: ${ledger.join(', ')}` : null].filter(Boolean).join('; ');
      throw conflict(`Run ${runId} cannot be closed: migrations of it landed (${what}). Roll them back (POST /v1/runs/${runId}/rollback, mode "down"), or re-apply the rest (POST /v1/runs/${runId}/reapply).`, { landed: { target, ledger } });
    }

    // The ETL pause the run made (a crash mid-pause leaves the flag without a stored PauseState).
    const runLog = runLogger(ctx.control, runId);
    const state = run.apply_state;
    const opts = {
      environment: env, targetUrl: ctx.targets.url(env), runId, actor: principal.subject, reason: `run ${runId} closed: ${reason}`,
      log: runLog.phase('workers'), applicationName: runApplicationName(runId, 'resume'), adopt: state.pauses,
    };
    let workers: string;
    try {
      if (env.workers.pause.method === 'sql') {
        const lifted = await liftOwnPause(state.pauses ?? [], opts);
        workers = {
          lifted: 'the run\'s ETL pause was lifted',
          'not-paused': 'the ETL was not paused',
          'paused-by-someone-else': 'the ETL is paused by someone else and was left paused',
          'no-etl-control': 'no etl_control table on the target',
        }[lifted];
      } else if (state.workersPaused && state.workers) {
        await resumeWorkers(state.workers, opts);
        workers = `workers resumed with the ${state.workers.method} method`;
      } else {
        workers = state.phase === 'pause'
          ? `the ${env.workers.pause.method} pause was under way when the process stopped: check whether the workers run`
          : 'workers were not paused by this run';
      }
    } catch (err) {
      workers = `resuming workers failed: ${(err as Error).message}; resume them by hand`;
    }
    await runLog.write('close', 'info', `closed by ${principal.subject} (nothing of the run landed): ${reason}; ${workers}`);
    await runLog.flush();
    const partialBackupRemoved = await removePartialBackup(ctx, run);
    const outcome: CloseOutcome = {
      checked: { target, ledger }, terminatedSessions: orphans.sessions.length,
      killedProcesses: orphans.processes.filter((p) => p.result === 'killed').length, workers, partialBackupRemoved,
    };
    await transaction(ctx.control, async (client) => {
      const locked = await lockRunForUpdate(client, runId);
      await exec(client, mergeApplyState(runId, { applied: [], workersPaused: false, pendingBackupFile: null }));
      await transition(client, locked, 'failed', {
        actor: principal.subject,
        type: 'run.closed',
        expect: ['interrupted'],
        details: { reason, ...outcome },
        patch: { error: { code: 'closed', message: `Interrupted, then closed by ${principal.subject}: none of the run's migrations landed (checked on the target and in the ledger). ${reason}` } },
      });
    });
    return outcome;
  } finally {
    await lock.release();
  }
}
