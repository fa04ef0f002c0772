import { exec, maybeOne, one, rows, transaction } from '../../database/db.js';
import { isPgError, UNIQUE_VIOLATION } from '../../database/pg-errors.js';
import {
  APPLY_LOCK_CLASS, backupOfRun, decideRollbackRequest, deleteLedger, finishRollbackRequest,
  mergeApplyState, openRollbackRequest, rollbackRequestsOfRun, type RollbackRow,
} from '../../database/sql/apply.js';
import { dropTable, setSessionTimeouts } from '../../database/sql/apply-target.js';
import { userTables } from '../../database/sql/preflight.js';
import { insertReport, latestReport } from '../../database/sql/reports.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import type { EnvironmentConfig } from '../../src/config/environments.js';
import { appendEvent } from '../audit.js';
import { createBackground, withRunLock } from '../background.js';
import type { ServiceContext } from '../context.js';
import { conflict, forbidden, notFound, unprocessable } from '../errors.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import { sealedSnapshot } from '../migrations/snapshot.js';
import { sealedSnapshotProblem } from '../migrations/snapshot-store.js';
import type { PreflightReport } from '../preflight/report.js';
import { sameSubject, type Principal } from '../principal.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { backupTables, restoreBackup, type BackupRecord } from './backup.js';
import { migrate, type AppliedStep } from './migrate.js';
import { runLogger } from './run-log.js';
import { pauseWorkers, resumeWorkers, type PauseState } from './workers.js';
import { checkApprovedPlan, gateRollbackApproval, type PlannedRollbackRow } from '../rollback-plan/approval.js';
import { planRollback } from '../rollback-plan/plan.js';
import { claimDueRollbacks } from '../rollback-plan/scheduled.js';
import type { RollbackPlan } from '../rollback-plan/types.js';
import { insertPlannedRollbackRequest, rollbackAwaitingApproval } from '../../database/sql/rollback-plan.js';

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
  checks: Array<{ id: string; status: 'pass' | 'fail'; detail: string }>;
  failure: { code: string; message: string } | null;
  notes: string[];
}

// Runs that changed (or may have changed) the target and may be undone.
const UNDOABLE: RunStatus[] = ['succeeded', 'failed', 'verification_failed', 'degraded', 'interrupted'];

function present(row: PlannedRollbackRow): RollbackRequest {
  return {
    id: row.id, runId: row.run_id, mode: row.mode, status: row.status, requestedBy: row.requested_by, reason: row.reason,
    decidedBy: row.decided_by, decisionComment: row.decision_comment, error: row.error,
    createdAt: row.created_at.toISOString(), updatedAt: row.updated_at.toISOString(),
    overrideWindow: row.override_window, scheduledFor: row.scheduled_for?.toISOString() ?? null,
    plan: row.plan, planDigest: row.plan_digest, approvedPlan: row.approved_plan, approvedPlanDigest: row.approved_plan_digest,
  };
}

interface ApplyState {
  applied?: string[];
}

/**
 * The runbook's rollback decision flow: `down` reverts exactly the migrations
 * this run applied (newest first, lock-safe); `restore` puts the run's verified
 * backup back. An operator asks, a different sre approves; both are audited.
 */
export function createRollbackService(ctx: ServiceContext) {
  const { control, config, log } = ctx;
  const background = createBackground(log);

  async function loadRun(runId: string): Promise<RunRow & { apply_state: ApplyState }> {
    const run = await maybeOne<RunRow & { apply_state: ApplyState }>(control, selectRun(runId));
    if (!run) throw notFound(`Run ${runId} does not exist.`);
    return run;
  }

  function appliedByRun(run: RunRow & { apply_state: ApplyState }) {
    const names = run.apply_state.applied ?? [];
    return run.migrations.filter((m) => names.includes(m.name));
  }

  /** Why `down` cannot undo this run, or null. */
  async function downBlocker(run: RunRow & { apply_state: ApplyState }, env: EnvironmentConfig): Promise<string | null> {
    const mine = appliedByRun(run);
    if (mine.length === 0) return 'this run applied no migration, so there is nothing to revert (use restore if a partial change landed)';
    // `down` runs the approved bytes only: from the run's sealed snapshot.
    const unsealed = await sealedSnapshotProblem(control, run);
    if (unsealed) return `${unsealed}; \`down\` runs only sealed bytes, so use mode "restore"`;
    const applied = await ctx.targets.withClient(env, (client) => readAppliedMigrations(client, env));
    const tail = applied.slice(-mine.length).map((a) => a.name);
    if (tail.join() !== mine.map((m) => m.name).join()) {
      return `the target's latest migrations are ${tail.join(', ') || 'none'}, not this run's (${mine.map((m) => m.name).join(', ')}); later changes sit on top`;
    }
    const preflight = await maybeOne<{ body: PreflightReport }>(control, latestReport(run.id, 'preflight'));
    const downs = preflight?.body.rehearsal?.steps.filter((s) => s.phase === 'down') ?? [];
    const irreversible = mine.filter((m) => !downs.some((s) => s.migration === m.name && s.ok));
    if (irreversible.length) {
      return `${irreversible.map((m) => m.name).join(', ')} cannot be reversed (its down migration failed or never ran in the preflight rehearsal); use mode "restore"`;
    }
    return null;
  }

  async function request(runId: string, principal: Principal, input: RollbackInput): Promise<RollbackRequest> {
    const run = await loadRun(runId);
    const env = config.environments[run.environment];
    if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
    if (input.confirm !== run.environment) {
      throw unprocessable(`"confirm" must be the environment name ("${run.environment}").`, { errors: [{ path: 'body/confirm', message: 'must equal the environment name' }] });
    }
    if (!UNDOABLE.includes(run.status as RunStatus)) {
      throw conflict(`Run ${runId} is ${run.status}; only a run that reached the target (${UNDOABLE.join(', ')}) can be rolled back or restored.`, { currentStatus: run.status });
    }
    if (input.mode === 'down') {
      const blocker = await downBlocker(run, env);
      if (blocker) throw conflict(`Rollback refused: ${blocker}.`);
    } else {
      const backup = await maybeOne(control, backupOfRun(runId));
      if (!backup) throw conflict(`Run ${runId} has no verified backup to restore.`);
      if (env.backup.method === 'external' && !env.backup.restoreCommand) {
        throw conflict(`${env.name} has no backup.restoreCommand: restore snapshot ${(backup as { location: string }).location} with your provider's tooling.`);
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
        details: { requestId: open.id, requestedBy: open.requested_by, reason: open.reason },
      });
      return running;
    });
    if (row.status === 'running') launch(row);
    return present(row);
  }

  function launch(row: RollbackRow): void {
    background.launch(row.mode, { runId: row.run_id }, () => withRunLock(control, APPLY_LOCK_CLASS, row.run_id, () => execute(row)).then(() => undefined));
  }

  /** At a scheduler tick: starts the approved rollbacks whose window has come (services/rollback-plan/scheduled.ts). */
  async function startDue(now = new Date()): Promise<string[]> {
    if (background.isClosed()) return [];
    const started = await claimDueRollbacks(ctx, now);
    for (const row of started) launch(row);
    return started.map((r) => r.run_id);
  }

  async function execute(request: RollbackRow): Promise<void> {
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
    let paused: PauseState | null = null;
    const endTimer = ctx.metrics.phaseTimer(env.name, phase);

    const finish = async (failure: { code: string; message: string } | null) => {
      report.failure = failure;
      report.outcome = failure ? 'failed' : 'succeeded';
      report.finishedAt = new Date().toISOString();
      if (paused && (!failure || env.workers.resumeOnFailure)) {
        try {
          await resumeWorkers(paused, { environment: env, targetUrl, runId: run.id, actor, reason: `${phase} ${report.outcome}`, log: runLog.phase('workers') });
        } catch (err) {
          report.notes.push(`Resuming workers failed: ${(err as Error).message}`);
        }
      } else if (paused) {
        report.notes.push('Workers stay paused after the failure: resume them once the target is safe.');
      }
      if (failure) await runLog.write(phase, 'error', failure.message);
      endTimer();
      await runLog.flush();
      await transaction(control, async (client) => {
        const locked = await lockRunForUpdate(client, run.id);
        await exec(client, insertReport(run.id, 'rollback', run.digest, report));
        await exec(client, finishRollbackRequest(request.id, failure ? 'failed' : 'succeeded', failure));
        await transition(client, locked, failure ? 'failed' : request.mode === 'down' ? 'rolled_back' : 'restored', {
          actor: 'system', details: { requestId: request.id, failure }, patch: failure ? { error: failure } : {},
        });
      });
    };

    await runLog.write(phase, 'info', `${request.mode} requested by ${request.requested_by}, approved by ${actor}: ${request.reason}`);
    try {
      paused = await pauseWorkers({ environment: env, targetUrl, runId: run.id, actor, reason: `${phase} of run ${run.id}`, log: runLog.phase('workers') });
    } catch (err) {
      return finish({ code: 'workers-pause-failed', message: `Pausing workers failed, nothing was changed: ${(err as Error).message}` });
    }

    if (request.mode === 'down') {
      const result = await migrate({
        environment: env,
        targetUrl,
        direction: 'down',
        migrations: [...mine].reverse(),
        source: sealedSnapshot(control, run, config.dataDir),
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
      const row = await maybeOne<{ id: string; method: 'pg_dump' | 'external'; location: string | null; size_bytes: string | null; sha256: string | null; created_at: Date; verified_at: Date | null }>(control, backupOfRun(run.id));
      const record: BackupRecord = {
        id: row!.id, method: row!.method, location: row!.location, sizeBytes: row!.size_bytes === null ? null : Number(row!.size_bytes),
        sha256: row!.sha256, createdAt: row!.created_at.toISOString(), verifiedAt: row!.verified_at?.toISOString() ?? null,
      };
      report.backupId = record.id;
      try {
        await restoreBackup(record, { environment: env, targetUrl, log: runLog.phase('restore') });
        report.dropped = await dropTablesNotInBackup(env, record, runLog.phase('restore'));
      } catch (err) {
        return finish({ code: 'restore-failed', message: `Restoring backup ${record.id} failed: ${(err as Error).message}` });
      }
      if (record.method === 'external') report.notes.push('Tables created after an external snapshot cannot be detected here; check the restored database.');
      await transaction(control, async (client) => {
        for (const m of mine) await exec(client, deleteLedger(env.name, m.name));
        await exec(client, mergeApplyState(run.id, { applied: [] }));
        await appendEvent(client, { runId: run.id, environment: env.name, type: 'backup.restored', actor, details: { backupId: record.id } });
      });
    }

    // Verify: none of the run's migrations is recorded on the target any more.
    const applied = await ctx.targets.withClient(env, (client) => readAppliedMigrations(client, env));
    const left = run.migrations.filter((m) => applied.some((a) => a.name === m.name)).map((m) => m.name);
    report.checks.push({
      id: 'migrations-removed',
      status: left.length ? 'fail' : 'pass',
      detail: left.length ? `${env.migrationsTable} still lists ${left.join(', ')}.` : `${env.migrationsTable} no longer lists any of the run's migrations.`,
    });
    if (left.length) return finish({ code: 'verification-failed', message: `After the ${request.mode}, ${left.join(', ')} is still recorded on the target.` });
    await runLog.write(phase, 'info', `${request.mode} finished; the target is back to its state before the run`);
    return finish(null);
  }

  /**
   * pg_restore --clean only replaces what the backup holds: tables the run
   * created after the backup would survive a restore (and a re-apply would then
   * fail on them). Drop them, so the target is the backup again.
   */
  async function dropTablesNotInBackup(env: EnvironmentConfig, record: BackupRecord, line: (l: string) => void): Promise<string[]> {
    const inBackup = await backupTables(record);
    if (inBackup === null) return [];
    return ctx.targets.withClient(env, async (client) => {
      const now = (await rows<{ name: string }>(client, userTables())).map((r) => r.name);
      const extra = now.filter((t) => !inBackup.includes(t));
      if (extra.length === 0) return [];
      await client.query('BEGIN');
      try {
        await one(client, setSessionTimeouts(env.lockTimeoutMs, env.statementTimeoutMs));
        for (const name of extra) {
          const [schema, table] = name.split('.') as [string, string];
          await exec(client, dropTable(client.escapeIdentifier(schema), client.escapeIdentifier(table)));
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      line(`dropped ${extra.length} table(s) created after the backup: ${extra.join(', ')}`);
      return extra;
    });
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
