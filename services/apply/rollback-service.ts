import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { exec, maybeOne, one, rows, transaction } from '../../database/db.js';
import { isPgError, UNIQUE_VIOLATION } from '../../database/pg-errors.js';
import {
  decideRollbackRequest, deleteLedger, mergeApplyState, openRollbackRequest, rollbackRequestsOfRun, type RollbackRow,
} from '../../database/sql/apply.js';
import { latestReport } from '../../database/sql/reports.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import { takeLease } from '../../database/sql/scheduler.js';
import { appendEvent } from '../audit.js';
import { createBackground } from '../background.js';
import { processRecorder, runApplicationName } from '../child-processes.js';
import type { ServiceContext } from '../context.js';
import { conflict, forbidden, notFound, ServiceError, unprocessable } from '../errors.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import { sealedSnapshot } from '../migrations/snapshot.js';
import { sameSubject, type Principal } from '../principal.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { createLease } from '../scheduler/lease.js';
import type { ApplyState, RollbackState } from './apply-state.js';
import { restoreBackup } from './backup.js';
import { trackRestore } from './backup-progress.js';
import { migrate } from './migrate.js';
import { finishRollback, type RollbackReport } from './rollback-report.js';
import { completeRestore, restoreBackupFor, tableOids } from './restore-steps.js';
import { tryLockRun, type RunLock } from './run-lock.js';
import { runLogger } from './run-log.js';
import { pauseWorkers, resumeWorkers, type PauseState } from './workers.js';
import { checkApprovedPlan, gateRollbackApproval, type PlannedRollbackRow } from '../rollback-plan/approval.js';
import { planRollback } from '../rollback-plan/plan.js';
import { claimDueRollbacks } from '../rollback-plan/scheduled.js';
import type { RollbackPlan } from '../rollback-plan/types.js';
import { insertPlannedRollbackRequest, rollbackAwaitingApproval } from '../../database/sql/rollback-plan.js';
import { withPause } from './pauses.js';
import { endWatchEarly } from './watch-end.js';
import { downBlocker } from './down-blocker.js';
import { verifySchemaRestored } from './schema-baseline.js';

export type { RollbackReport } from './rollback-report.js';

export interface RollbackInput {
  mode: 'down' | 'restore';
  confirm: string;
  reason: string;
  /** Outside the windows: run at once when an sre approves (a co-signed override) instead of at the next window. */
  overrideWindow?: boolean;
}

export interface RollbackRequest {
  id: string;
  runId: string;
  mode: 'down' | 'restore';
  status: string;
  requestedBy: string;
  reason: string;
  decidedBy: string | null;
  decisionComment: string | null;
  error: object | null;
  createdAt: string;
  updatedAt: string;
  overrideWindow: boolean;
  /** Approved outside a window without an override: when it starts. */
  scheduledFor: string | null;
  /** The plan when it was asked for, and the one its approver approved (services/rollback-plan). */
  plan: RollbackPlan | null;
  planDigest: string | null;
  approvedPlan: RollbackPlan | null;
  approvedPlanDigest: string | null;
}

// Runs that changed (or may have changed) the target and may be undone.
const UNDOABLE: RunStatus[] = ['succeeded', 'failed', 'verification_failed', 'degraded', 'interrupted'];
// A monitoring run may be asked about too: approving ends its watch first (services/apply/watch-end.ts).
const REQUESTABLE: RunStatus[] = [...UNDOABLE, 'monitoring'];

function present(row: PlannedRollbackRow): RollbackRequest {
  return {
    id: row.id, runId: row.run_id, mode: row.mode, status: row.status, requestedBy: row.requested_by, reason: row.reason,
    decidedBy: row.decided_by, decisionComment: row.decision_comment, error: row.error,
    createdAt: row.created_at.toISOString(), updatedAt: row.updated_at.toISOString(),
    overrideWindow: row.override_window, scheduledFor: row.scheduled_for?.toISOString() ?? null,
    plan: row.plan, planDigest: row.plan_digest, approvedPlan: row.approved_plan, approvedPlanDigest: row.approved_plan_digest,
  };
}

type StoredRun = RunRow & { apply_state: ApplyState };

/**
 * The runbook's rollback decision flow: `down` reverts exactly the migrations
 * this run applied (newest first, lock-safe); `restore` puts the run's verified
 * backup back. An operator asks, a different sre approves; both are audited.
 * Like an apply, the work holds the run's apply lock and a lease from before
 * the status change to its end, so a process dying mid-way is reconciled
 * (services/apply/rollback-reconcile.ts) instead of leaving the run
 * rolling_back or restoring for ever.
 */
export function createRollbackService(ctx: ServiceContext) {
  const { control, config, log } = ctx;
  const background = createBackground(log);
  const lease = createLease(control, log, config.applyLeaseSeconds * 1000);

  async function loadRun(runId: string): Promise<StoredRun> {
    const run = await maybeOne<StoredRun>(control, selectRun(runId));
    if (!run) throw notFound(`Run ${runId} does not exist.`);
    return run;
  }

  function appliedByRun(run: StoredRun) {
    const names = run.apply_state.applied ?? [];
    return run.migrations.filter((m) => names.includes(m.name));
  }

  async function request(runId: string, principal: Principal, input: RollbackInput): Promise<RollbackRequest> {
    const run = await loadRun(runId);
    const env = config.environments[run.environment];
    if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
    if (input.confirm !== run.environment) {
      throw unprocessable(`"confirm" must be the environment name ("${run.environment}").`, { errors: [{ path: 'body/confirm', message: 'must equal the environment name' }] });
    }
    if (!REQUESTABLE.includes(run.status as RunStatus)) {
      throw conflict(`Run ${runId} is ${run.status}; only a run that reached the target (${REQUESTABLE.join(', ')}) can be rolled back or restored.`, { currentStatus: run.status });
    }
    if (input.mode === 'down') {
      const blocker = await downBlocker(ctx, run, env, appliedByRun(run));
      if (blocker) throw conflict(`Rollback refused: ${blocker}.`);
    } else {
      const backup = await restoreBackupFor(ctx, run);
      if (!backup) {
        throw conflict(`Run ${runId} has no verified backup to restore${run.status === 'interrupted' ? `; if nothing of it landed, close it instead (POST /v1/runs/${runId}/close)` : ''}.`);
      }
      if (env.backup.method === 'external' && !env.backup.restoreCommand) {
        throw conflict(`${env.name} has no backup.restoreCommand: restore snapshot ${backup.location} with your provider's tooling.`);
      }
    }
    // What it would do, read now: shown with the request, approved by digest.
    const plan = await planRollback(ctx, runId, input.mode);
    const overrideWindow = input.overrideWindow === true;
    try {
      const row = await transaction(control, async (client) => {
        const created = await one<PlannedRollbackRow>(client, insertPlannedRollbackRequest({ runId, mode: input.mode, requestedBy: principal.subject, reason: input.reason, overrideWindow, plan, planDigest: plan.digest }));
        await appendEvent(client, { runId, environment: run.environment, type: 'rollback.requested', actor: principal.subject, details: { requestId: created.id, mode: input.mode, reason: input.reason, overrideWindow, planDigest: plan.digest, window: plan.window } });
        return created;
      });
      return present(row);
    } catch (err) {
      if (isPgError(err, UNIQUE_VIOLATION)) throw conflict(`Run ${runId} already has an open rollback request; approve, reject or wait for it.`);
      throw err;
    }
  }

  async function decide(runId: string, principal: Principal, input: { decision: 'approve' | 'reject'; comment?: string; planDigest?: string }): Promise<RollbackRequest> {
    const pending = await maybeOne<RollbackRow>(control, rollbackAwaitingApproval(runId));
    if (pending && sameSubject(pending.requested_by, principal.subject)) throw forbidden(`${principal.subject} asked for this ${pending.mode}; another sre must approve it.`);
    // The approver approves the plan they saw; it is re-read from the target before the deciding transaction.
    const approvedPlan = input.decision === 'approve' && pending ? await checkApprovedPlan(ctx, runId, pending.mode, input.planDigest) : null;
    // The apply lock is taken before the run moves to rolling_back/restoring (as for an apply):
    // an in-flight run with a free lock always means its owner died.
    if (approvedPlan && pending) await endWatchFor(runId, principal, pending);
    const runLock = await lockRunWaiting(runId, approvedPlan ? lease.ms + 2000 : 0);
    if (!runLock) throw conflict(`Run ${runId} is being worked on by another process (an apply, a re-apply or a reconciliation); try again shortly.`);
    let handedOff = false;
    try {
      const row = await transaction(control, async (client) => {
        const run = await lockRunForUpdate(client, runId);
        const open = await maybeOne<PlannedRollbackRow>(client, openRollbackRequest(runId));
        if (!open || open.status !== 'awaiting_approval') throw conflict(`Run ${runId} has no rollback request awaiting approval.`);
        if (sameSubject(open.requested_by, principal.subject)) {
          throw forbidden(`${principal.subject} asked for this ${open.mode}; another sre must approve it.`);
        }
        const comment = input.comment ?? '';
        if (input.decision === 'reject') {
          const rejected = await one<PlannedRollbackRow>(client, decideRollbackRequest(open.id, 'rejected', principal.subject, comment));
          await appendEvent(client, { runId, environment: run.environment, type: 'rollback.rejected', actor: principal.subject, details: { requestId: open.id, comment } });
          return rejected;
        }
        if (!approvedPlan || open.id !== pending?.id) throw conflict(`The rollback request of run ${runId} changed meanwhile; look at it again.`);
        const env = config.environments[run.environment];
        if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
        const gate = await gateRollbackApproval(client, { env, run, request: open, approver: principal.subject, comment, plan: approvedPlan, now: new Date() });
        if (!gate.start) return gate.row;
        const running = await one<PlannedRollbackRow>(client, decideRollbackRequest(open.id, 'running', principal.subject, comment));
        await appendEvent(client, { runId, environment: run.environment, type: 'rollback.approved', actor: principal.subject, details: { requestId: open.id, mode: open.mode, comment, planDigest: approvedPlan.digest } });
        await transition(client, run, open.mode === 'down' ? 'rolling_back' : 'restoring', {
          actor: principal.subject,
          details: { requestId: open.id, requestedBy: open.requested_by, reason: open.reason, instance: lease.owner },
        });
        await beginRollback(client, running);
        return running;
      });
      if (row.status === 'running') {
        handedOff = true;
        launch(row, runLock);
      }
      return present(row);
    } finally {
      if (!handedOff) await runLock.release();
    }
  }

  /**
   * Approving the undo of a monitoring run ends its watch first, on what it
   * saw so far (audited watch.ended_early, the run succeeded or degraded), so
   * the run reaches a status a rollback starts from; the watcher, wherever
   * it runs, loses its lease with that change and lets go of the run lock.
   */
  async function endWatchFor(runId: string, principal: Principal, pending: RollbackRow): Promise<void> {
    const run = await loadRun(runId);
    if (run.status !== 'monitoring') return;
    try {
      await endWatchEarly(ctx, runId, principal.subject, `${pending.mode === 'down' ? 'rollback' : 'restore'} request approved`, { requestId: pending.id });
    } catch (err) {
      // The watch ended meanwhile on its own: the run is where a rollback starts from anyway.
      if (!(err instanceof ServiceError && err.statusCode === 409)) throw err;
    }
  }

  /** The run lock, waiting up to `ms` for a watcher that just lost its lease to let go of it. */
  async function lockRunWaiting(runId: string, ms: number): Promise<RunLock | null> {
    const until = Date.now() + ms;
    for (;;) {
      const lock = await tryLockRun(control, runId);
      if (lock || Date.now() >= until) return lock;
      await sleep(100);
    }
  }

  /** In the transaction that moves the run to rolling_back/restoring: its state and this process's lease. */
  async function beginRollback(client: pg.PoolClient, request: RollbackRow): Promise<void> {
    const state: RollbackState = { requestId: request.id, mode: request.mode, phase: 'pause' };
    await exec(client, mergeApplyState(request.run_id, { rollback: state }));
    await exec(client, takeLease(request.run_id, lease.owner, lease.ms));
  }

  /** Runs a started rollback under the run lock taken before its status change, renewing the lease. */
  function launch(row: RollbackRow, runLock: RunLock): void {
    const held = lease.hold(row.run_id);
    background.launch(row.mode, { runId: row.run_id }, async () => {
      try {
        await execute(row, held.signal);
      } finally {
        await held.stop();
        await runLock.release();
      }
    });
    if (background.isClosed()) {
      // Shutting down: the run stays in flight with its lease dropped; a reconciler ends it.
      void held.stop().then(() => runLock.release());
    }
  }

  /** At a scheduler tick: starts the approved rollbacks whose window has come (services/rollback-plan/scheduled.ts). */
  async function startDue(now = new Date()): Promise<string[]> {
    if (background.isClosed()) return [];
    const started = await claimDueRollbacks(ctx, now, {
      lockRun: (runId) => tryLockRun(control, runId),
      onStart: (client, _run, request) => beginRollback(client, request),
    });
    for (const { row, lock } of started) launch(row, lock);
    return started.map((r) => r.row.run_id);
  }

  async function execute(request: RollbackRow, fence: AbortSignal): Promise<void> {
    const run = await loadRun(request.run_id);
    const env = config.environments[run.environment]!;
    const targetUrl = ctx.targets.url(env);
    const runLog = runLogger(control, run.id);
    const phase = request.mode === 'down' ? 'rollback' : 'restore';
    const actor = request.decided_by ?? 'system';
    const report: RollbackReport = {
      runId: run.id, requestId: request.id, mode: request.mode, outcome: 'failed', requestedBy: request.requested_by, approvedBy: actor,
      reason: request.reason, startedAt: new Date().toISOString(), finishedAt: '', reverted: [], backupId: null, dropped: [], checks: [], failure: null, notes: [],
    };
    const mine = appliedByRun(run);
    const pauses = withPause(run.apply_state.pauses, { pausedBy: actor, pauseReason: `${phase} of run ${run.id}` });
    let state: RollbackState = run.apply_state.rollback ?? { requestId: request.id, mode: request.mode, phase: 'pause' };
    let paused: PauseState | null = null;
    const endTimer = ctx.metrics.phaseTimer(env.name, phase);
    const spawned = (p: string) => processRecorder(control, run.id, p, lease.owner, log);
    const step = async (patch: Partial<RollbackState>) => {
      if (fence.aborted) throw fence.reason instanceof Error ? fence.reason : new Error('lost the run lease');
      state = { ...state, ...patch };
      await exec(control, mergeApplyState(run.id, { rollback: state }));
    };

    const finish = async (failure: { code: string; message: string } | null) => {
      report.failure = failure;
      report.outcome = failure ? 'failed' : 'succeeded';
      report.finishedAt = new Date().toISOString();
      if (paused && (!failure || env.workers.resumeOnFailure)) {
        try {
          const resumed = await resumeWorkers(paused, { environment: env, targetUrl, runId: run.id, actor, reason: `${phase} ${report.outcome}`, log: runLog.phase('workers'), applicationName: runApplicationName(run.id, 'resume'), onSpawn: spawned('resume'), adopt: pauses });
          if (resumed === 'not-configured') report.notes.push(`Workers: not configured after the ${phase} (no etl_control table on the target), nothing to resume.`);
        } catch (err) {
          report.notes.push(`Resuming workers failed: ${(err as Error).message}`);
        }
      } else if (paused) {
        report.notes.push('Workers stay paused after the failure: resume them once the target is safe.');
      }
      if (failure) await runLog.write(phase, 'error', failure.message);
      endTimer();
      await runLog.flush();
      await finishRollback(control, run, request.id, request.mode, report, lease.owner);
    };

    await runLog.write(phase, 'info', `${request.mode} requested by ${request.requested_by}, approved by ${actor}: ${request.reason}`);
    try {
      await exec(control, mergeApplyState(run.id, { pauses }));
      paused = await pauseWorkers({ environment: env, targetUrl, runId: run.id, actor, reason: `${phase} of run ${run.id}`, log: runLog.phase('workers'), applicationName: runApplicationName(run.id, 'pause'), onSpawn: spawned('pause'), adopt: pauses });
      await step({ workers: paused });
    } catch (err) {
      return finish({ code: 'workers-pause-failed', message: `Pausing workers failed, nothing was changed: ${(err as Error).message}` });
    }

    if (request.mode === 'down') {
      await step({ phase: 'down' });
      const result = await migrate({
        environment: env,
        targetUrl,
        direction: 'down',
        migrations: [...mine].reverse(),
        source: sealedSnapshot(control, run, config.dataDir),
        applicationName: runApplicationName(run.id, 'down'),
        budget: { ...env.lockRetries, deadline: null },
        log: runLog.phase('rollback'),
        onStep: async (step) => {
          await transaction(control, async (client) => {
            await exec(client, deleteLedger(env.name, step.name));
            await exec(client, mergeApplyState(run.id, { applied: mine.map((m) => m.name).filter((n) => !report.reverted.some((r) => r.name === n) && n !== step.name) }));
            await appendEvent(client, { runId: run.id, environment: env.name, type: 'migration.reverted', actor, details: { ...step } });
          });
          report.reverted.push(step);
        },
      });
      if (result.failure) return finish({ code: result.failure.code, message: `Reverting ${result.failure.migration ?? ''} failed: ${result.failure.message}` });
    } else {
      const record = (await restoreBackupFor(ctx, run))!;
      report.backupId = record.id;
      try {
        // Before pg_restore: the ids its single transaction would change, so a crash can be told apart from a commit.
        const restoreOids = await tableOids(ctx, env, record) ?? undefined;
        await step({ phase: 'restore', backupId: record.id, restoreOids });
        await trackRestore(control, run.id, (p) => ctx.metrics.applyProgressOf(env.name, p), (onProgress) => restoreBackup(record, { environment: env, targetUrl, log: runLog.phase('restore'), applicationName: runApplicationName(run.id, 'restore'), onSpawn: spawned('restore'), onProgress }));
        await step({ phase: 'cleanup' });
        const done = await completeRestore(ctx, env, run, record, paused, actor, runLog.phase('restore'));
        report.dropped = done.dropped;
        report.etl = done.etl;
        report.notes.push(`ETL: ${done.etl.action}.`);
      } catch (err) {
        return finish({ code: 'restore-failed', message: `Restoring backup ${record.id} failed: ${(err as Error).message}` });
      }
      if (record.method === 'external') report.notes.push('Tables created after an external snapshot cannot be detected here; check the restored database.');
    }

    // Verify: none of the run's migrations is recorded on the target any more.
    await step({ phase: 'verify' });
    const applied = await ctx.targets.withClient(env, (client) => readAppliedMigrations(client, env));
    const left = run.migrations.filter((m) => applied.some((a) => a.name === m.name)).map((m) => m.name);
    report.checks.push({
      id: 'migrations-removed',
      status: left.length ? 'fail' : 'pass',
      detail: left.length ? `${env.migrationsTable} still lists ${left.join(', ')}.` : `${env.migrationsTable} no longer lists any of the run's migrations.`,
    });
    if (left.length) return finish({ code: 'verification-failed', message: `After the ${request.mode}, ${left.join(', ')} is still recorded on the target.` });
    // Rows gone from the migrations table are not yet the schema back: compare with the one recorded before the apply.
    const schema = request.mode === 'down' ? await verifySchemaRestored(ctx, run, env) : null;
    if (schema) report.checks.push(schema.check);
    if (schema?.failure) return finish(schema.failure);
    await runLog.write(phase, 'info', `${request.mode} finished; the target is back to its state before the run`);
    return finish(null);
  }

  async function list(runId: string): Promise<RollbackRequest[]> {
    await loadRun(runId);
    return (await rows<PlannedRollbackRow>(control, rollbackRequestsOfRun(runId))).map(present);
  }

  async function report(runId: string): Promise<RollbackReport | null> {
    const row = await maybeOne<{ body: RollbackReport }>(control, latestReport(runId, 'rollback'));
    return row?.body ?? null;
  }

  return { request, decide, list, report, startDue, idle: background.idle, close: background.close };
}

export type RollbackService = ReturnType<typeof createRollbackService>;
