import { exec, maybeOne, rows, transaction } from '../../database/db.js';
import { insertBackup, mergeApplyState, openRollbackRequest, upsertLedger } from '../../database/sql/apply.js';
import { invalidIndexes } from '../../database/sql/apply-target.js';
import { recordBackupTiming, recordMigrationTiming } from '../../database/sql/estimates.js';
import { latestReport } from '../../database/sql/reports.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { appendEvent } from '../audit.js';
import { createBackground } from '../background.js';
import { processRecorder, runApplicationName } from '../child-processes.js';
import type { ServiceContext } from '../context.js';
import { conflict, notFound, ServiceError, unprocessable } from '../errors.js';
import { sealedSnapshot } from '../migrations/snapshot.js';
import type { Principal } from '../principal.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { createLease } from '../scheduler/lease.js';
import { armConfirmed, decideConfirmation, recordConfirmation, type ConfirmOutcome } from '../policy/confirm.js';
import { requestOverride } from '../policy/override-request.js';
import { recordWriteCounters, snapshotWriteCounters } from '../rollback-plan/write-counters.js';
import { windowForApply } from '../scheduler/policy.js';
import { verifyApply } from '../verify/verify.js';
import { baselineWindow, etlRates, watchWindow } from '../verify/watch.js';
import { finishApply, type ApplyReport } from './apply-report.js';
import type { ApplyPhase, ApplyState } from './apply-state.js';
import { createBackup } from './backup.js';
import { trackBackup } from './backup-progress.js';
import { checkDrift } from './drift.js';
import { closeInterrupted } from './close-run.js';
import { migrate, type MigrateFailure } from './migrate.js';
import { terminateRunSessions } from './orphans.js';
import { reconcileInFlight } from './reconcile.js';
import { progressReporter } from './progress.js';
import { runLogger } from './run-log.js';
import { recordPreApplySchema } from './schema-baseline.js';
import { createStarter } from './start.js';
import { completeWatch, nothingToWatch } from './watch-phase.js';
import { endWatchEarly } from './watch-end.js';
import { pauseNotConfigured, pauseWorkers, resumeWorkers, WORKERS_NOT_CONFIGURED, type PauseState } from './workers.js';
import { withPause } from './pauses.js';

export type { ApplyReport } from './apply-report.js';
export type { Reconciliation } from './reconcile-types.js';
export { driftOf } from './drift.js';

export interface ApplyInput {
  confirm: string;
  overrideWindow?: boolean;
  reason?: string;
}

const APPLYABLE: RunStatus[] = ['approved', 'scheduled'];
const RUNBOOK_ON_FAILED_VERIFICATION =
  'Runbook decision flow: if the migration has a safe down, ask for a rollback (mode "down"); if not, restore the backup (mode "restore").';

type StoredRun = RunRow & { apply_state: ApplyState };

/**
 * The runbook's apply as one audited pipeline: drift check, pause workers,
 * verified backup, lock-safe migrate, verify, resume workers, monitor.
 * Whoever holds the run's apply lock and lease runs it; a process that dies
 * mid-apply leaves both to lapse, and reconciliation (services/apply/reconcile.ts)
 * takes the run on. A re-apply of an interrupted run goes through the same
 * door (start) and pipeline, running only what had not landed.
 */
export function createApplyService(ctx: ServiceContext) {
  const { control, config, log } = ctx;
  const background = createBackground(log);
  // Aborted on close: a post-apply watch is handed to another replica instead of holding shutdown for watchMinutes.
  const shutdown = new AbortController();
  const lease = createLease(control, log, config.applyLeaseSeconds * 1000);

  async function loadRun(runId: string): Promise<StoredRun> {
    const run = await maybeOne<StoredRun>(control, selectRun(runId));
    if (!run) throw notFound(`Run ${runId} does not exist.`);
    return run;
  }

  function checkConfirm(run: RunRow, input: ApplyInput): void {
    if (input.confirm !== run.environment) {
      throw unprocessable(`"confirm" must be the environment name ("${run.environment}") to apply this run.`, { errors: [{ path: 'body/confirm', message: 'must equal the environment name' }] });
    }
  }

  function checkFreeze(env: EnvironmentConfig, now: Date): void {
    const freeze = env.freezes.find((f) => f.from <= now && now < f.to);
    if (freeze) throw conflict(`${env.name} is frozen until ${freeze.to.toISOString()} (${freeze.reason}); a freeze always wins.`);
  }

  /**
   * The window rules of a re-apply: inside a window (or none configured). A
   * re-apply outside the windows would need the co-signed override of an apply
   * (services/policy), which is bound to a fresh apply, so it waits for a window.
   */
  function checkReapplyWindow(env: EnvironmentConfig, now: Date) {
    checkFreeze(env, now);
    const slot = windowForApply(env, now);
    if (!slot.open) {
      const next = slot.next ? ` (the next one opens ${slot.next.start.toISOString()})` : '';
      throw conflict(`${env.name} has no maintenance window open now${next}; re-apply inside a window, or close / roll back the run.`, { code: 'outside-window', nextWindow: slot.next ? { start: slot.next.start.toISOString(), end: slot.next.end.toISOString() } : null });
    }
    return slot;
  }

  async function refuseDrift(run: RunRow, env: EnvironmentConfig, actor: string): Promise<Awaited<ReturnType<typeof checkDrift>>> {
    const drift = await checkDrift(ctx, run, env);
    if (drift.reason) {
      await transaction(control, (client) => appendEvent(client, {
        runId: run.id, environment: run.environment, type: 'apply.refused', actor, details: { code: 'drift', reason: drift.reason },
      }));
      throw conflict(`Refused: ${drift.reason}. Nothing was changed; re-run preflight and get the new content approved.`, { code: 'drift' });
    }
    return drift;
  }

  async function startFor(run: RunRow, principal: Principal, input: ApplyInput, slot: ReturnType<typeof windowForApply>, expect: RunStatus[], type: string, extra: Record<string, unknown>) {
    const started = await start(run.id, principal.subject, {
      expect,
      type,
      deadline: slot.deadline,
      details: {
        reason: input.reason ?? null, overrideWindow: !slot.open, digest: run.digest, ...extra,
        window: slot.window ? { start: slot.window.start.toISOString(), end: slot.window.end.toISOString() } : null,
      },
      gate: async (client, locked) => {
        if (!slot.open) {
          await appendEvent(client, { runId: run.id, environment: locked.environment, type: 'apply.window_overridden', actor: principal.subject, details: { reason: input.reason ?? null, nextWindow: slot.next ? { start: slot.next.start.toISOString(), end: slot.next.end.toISOString() } : null } });
        }
        return { deadline: slot.deadline };
      },
    });
    if (started.outcome !== 'started') throw conflict(`Run ${run.id} is being started by another process (the scheduler or another replica); check its status.`);
  }

  async function request(runId: string, principal: Principal, input: ApplyInput, now = new Date()): Promise<ConfirmOutcome> {
    const run = await loadRun(runId);
    const env = config.environments[run.environment];
    if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
    checkConfirm(run, input);
    if (!APPLYABLE.includes(run.status as RunStatus)) {
      throw conflict(`Run ${runId} is ${run.status}; only approved or scheduled runs can be applied.`, { currentStatus: run.status });
    }
    checkFreeze(env, now);
    // The operator's confirmation: now inside a window, else armed for the next one, or a co-signed override (services/policy).
    const confirmation = decideConfirmation(env, input, now);
    await refuseDrift(run, env, principal.subject);
    if (confirmation.kind === 'arm') return armConfirmed(ctx, runId, principal, env, confirmation.next, now);
    if (confirmation.kind === 'override') return requestOverride(ctx, runId, principal, env, confirmation.reason, confirmation.next);
    const started = await start(runId, principal.subject, {
      expect: APPLYABLE,
      type: 'apply.started',
      deadline: confirmation.deadline,
      details: {
        reason: input.reason ?? null, overrideWindow: false, digest: run.digest,
        window: confirmation.window ? { start: confirmation.window.start.toISOString(), end: confirmation.window.end.toISOString() } : null,
      },
      gate: async (client, locked) => {
        await recordConfirmation(client, locked, principal.subject, { outcome: 'applying' });
        return { deadline: confirmation.deadline };
      },
    });
    if (started.outcome !== 'started') throw conflict(`Run ${runId} is being started by another process (the scheduler or another replica); check its status.`);
    return { outcome: 'applying' };
  }

  /**
   * interrupted -> applying: an operator re-applies what of the run had not
   * landed, after a fresh drift check (the remaining files must be the
   * approved ones, the landed ones exactly the run's first ones), through the
   * same start and pipeline as any apply. Refused while anything of the dead
   * attempt still runs on the target or an INVALID index it left is in the way.
   */
  async function reapply(runId: string, principal: Principal, input: ApplyInput & { reason: string }, now = new Date()): Promise<void> {
    const run = await loadRun(runId);
    const env = config.environments[run.environment];
    if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
    checkConfirm(run, input);
    if (run.status !== 'interrupted') {
      throw conflict(`Run ${runId} is ${run.status}; only an interrupted run can be re-applied.`, { currentStatus: run.status });
    }
    if (await maybeOne(control, openRollbackRequest(runId))) throw conflict(`Run ${runId} has an open rollback or restore request; decide it before re-applying.`);
    const slot = checkReapplyWindow(env, now);
    // Anything of the dead attempt still running there (a process cut off from the control database) is stopped first.
    const leftovers = await terminateRunSessions(ctx, env, runId);
    const invalid = await ctx.targets.withClient(env, (client) => rows<{ index: string; table: string }>(client, invalidIndexes()));
    if (invalid.length) {
      throw conflict(`INVALID index(es) ${invalid.map((i) => `${i.index} on ${i.table}`).join(', ')} remain (a CONCURRENTLY build the interrupted attempt did not finish); drop them (DROP INDEX CONCURRENTLY) before re-applying.`, { code: 'invalid-index' });
    }
    const drift = await refuseDrift(run, env, principal.subject);
    await startFor(run, principal, input, slot, ['interrupted'], 'apply.reapplied', { reapply: true, landed: drift.landed, remaining: drift.remaining.map((m) => m.name), terminatedSessions: leftovers.length });
  }

  async function event(runId: string, environment: string, type: string, actor: string, details: Record<string, unknown>): Promise<void> {
    await transaction(control, (client) => appendEvent(client, { runId, environment, type, actor, details }));
  }

  async function move(runId: string, to: RunStatus, actor: string, details: Record<string, unknown>, state?: Partial<ApplyState>): Promise<void> {
    await transaction(control, async (client) => {
      const locked = await lockRunForUpdate(client, runId);
      await transition(client, locked, to, { actor, details });
      if (state) await exec(client, mergeApplyState(runId, state));
    });
  }

  async function pipeline(runId: string, actor: string, deadline: Date | null = null, fence: AbortSignal = new AbortController().signal): Promise<void> {
    const run = await loadRun(runId);
    if (run.status !== 'applying') return;
    const env = config.environments[run.environment]!;
    const targetUrl = ctx.targets.url(env);
    const runLog = runLogger(control, runId);
    const endTotal = ctx.metrics.phaseTimer(env.name, 'total');
    const report: ApplyReport = {
      runId, environment: env.name, outcome: 'failed', actor, startedAt: new Date().toISOString(), finishedAt: '',
      backup: null, workers: null, migrations: [], lockRetries: 0, failure: null, verification: [], smoke: null, watch: null, notes: [],
    };
    const reason = `migration run ${runId}${run.ticket ? ` (${run.ticket})` : ''}`;
    // Every pause of the ETL this run makes, recorded before it is made: after a crash mid-pause the flag
    // is set with no PauseState stored, and closing or re-applying the run still knows the pause as the run's.
    const pauses = withPause(run.apply_state.pauses, { pausedBy: actor, pauseReason: reason });
    let paused: PauseState | null = null;
    // The run's migrations on the target (those landed before a re-apply included).
    const applied: string[] = [];
    const spawned = (phase: string) => processRecorder(control, runId, phase, lease.owner, log);
    // Each phase is recorded before it starts: what a reconciler reads after a crash.
    // This process lost the run (its lease lapsed and another one reconciled it): stop before changing anything more.
    const fenced = () => {
      if (fence.aborted) throw fence.reason instanceof Error ? fence.reason : new Error('lost the run lease');
    };
    const phase = async (name: ApplyPhase) => {
      fenced();
      await exec(control, mergeApplyState(runId, { phase: name }));
    };

    const fail = async (phase: string, code: string, message: string, extra: Omit<Partial<MigrateFailure>, 'code' | 'message'> = {}, status: RunStatus = 'failed') => {
      report.failure = { ...extra, phase, code, message };
      report.outcome = status === 'verification_failed' ? 'verification_failed' : 'failed';
      await runLog.write(phase, 'error', message);
      // Nothing of the run on the target (and no partial non-transactional one): the ETL has nothing to be kept from.
      const nothingLanded = applied.length === 0 && !extra.partial;
      if (paused && env.workers.resumeOnFailure) {
        await resume(`apply failed (${code})`);
        if (report.workers?.resumed) report.notes.push('The workers this run paused were resumed after the failure (workers.resumeOnFailure).');
      }
      else if (paused && nothingLanded && env.workers.resumeWhenNothingLanded) {
        await resume(`apply failed (${code}) before any migration landed`);
        if (report.workers?.resumed) report.notes.push('Nothing landed on the target, so the workers this run paused were resumed (workers.resumeWhenNothingLanded).');
      } else if (paused) {
        report.notes.push(nothingLanded
          ? 'Workers stay paused after the failure (workers.resumeWhenNothingLanded is off): resume them once the target is safe.'
          : 'Workers stay paused after the failure (workers.resumeOnFailure is off): resume them once the target is safe.');
      }
      await finish(status, { code, message, phase, migration: extra.migration ?? null, statement: extra.statement ?? null, sqlState: extra.sqlState ?? null, partial: extra.partial ?? null, ...(extra.blockers ? { blockers: extra.blockers } : {}) });
    };

    const finish = async (status: RunStatus, error: object | null) => {
      report.finishedAt = new Date().toISOString();
      endTotal();
      await runLog.flush();
      // Only from where this process left it: a run another process reconciled meanwhile is not overwritten.
      await finishApply(control, runId, run.digest, report, status, error, ['applying', 'verifying']);
    };

    const resume = async (why: string) => {
      if (!paused) return;
      try {
        await resumeWorkers(paused, { environment: env, targetUrl, runId, actor, reason: why, log: runLog.phase('workers'), applicationName: runApplicationName(runId, 'resume'), onSpawn: spawned('resume'), adopt: pauses });
        report.workers = { ...report.workers!, resumed: true };
        await exec(control, mergeApplyState(runId, { workersPaused: false }));
        await event(runId, env.name, 'workers.resumed', actor, { method: paused.method, reason: why });
      } catch (err) {
        await runLog.write('workers', 'error', `resuming workers failed: ${(err as Error).message}`);
        report.notes.push(`Resuming workers failed: ${(err as Error).message}`);
      }
    };

    await runLog.write('apply', 'info', `apply of ${run.migrations.length} migration(s) to ${env.name} started by ${actor}`);

    // 1. Drift, again: the approval covered exactly this content. A re-apply runs only what has not landed.
    await phase('drift');
    const drift = await checkDrift(ctx, run, env);
    if (drift.reason) return fail('drift', 'drift', `Refused before any change: ${drift.reason}.`);
    const remaining = drift.remaining;
    applied.push(...drift.landed);
    if (drift.landed.length) {
      report.landedBefore = drift.landed;
      await runLog.write('apply', 'info', `re-apply: ${drift.landed.join(', ')} landed before the interruption; running ${remaining.map((m) => m.name).join(', ') || 'no migration (verification and watch only)'}`);
    }

    // The ETL's health before anything changes: what the post-apply watch compares against.
    const window = baselineWindow(new Date(report.startedAt), env.verify.watchMinutes);
    const baseline = await ctx.targets.withClient(env, (client) => etlRates(client, window.from, window.to)).catch(() => null);

    // 2. Workers.
    await phase('pause');
    await exec(control, mergeApplyState(runId, { pauses }));
    try {
      paused = await pauseWorkers({ environment: env, targetUrl, runId, actor, reason, log: runLog.phase('workers'), applicationName: runApplicationName(runId, 'pause'), onSpawn: spawned('pause'), adopt: pauses });
      if (pauseNotConfigured(paused)) {
        paused = null;
        report.notes.push(WORKERS_NOT_CONFIGURED);
      } else {
        report.workers = { method: paused.method, pausedAt: paused.pausedAt, previousReplicas: paused.previousReplicas, resumed: false, note: paused.note };
        await exec(control, mergeApplyState(runId, { workersPaused: true, workers: paused }));
        await event(runId, env.name, 'workers.paused', actor, { method: paused.method, previousReplicas: paused.previousReplicas, note: paused.note });
      }
    } catch (err) {
      return fail('workers', 'workers-pause-failed', `Pausing workers failed, so nothing was applied: ${(err as Error).message}`);
    }

    // 3. Backup: no verified backup, no apply.
    await phase('backup');
    const backupMetrics = ctx.metrics.backupAttempt(env.name);
    const progress = progressReporter(control, runId, (p) => ctx.metrics.applyProgressOf(env.name, p));
    try {
      const counters = await snapshotWriteCounters(ctx.targets, env, log);
      const backup = await trackBackup({ control, runId, environment: env.name, method: env.backup.method, actor, progress }, (hooks) => createBackup({
        environment: env, targetUrl, runId, dataDir: config.dataDir, projectRoot: PROJECT_ROOT, log: runLog.phase('backup'),
        applicationName: runApplicationName(runId, 'backup'), onSpawn: spawned('backup'), ...hooks,
        onFile: (file) => exec(control, mergeApplyState(runId, { pendingBackupFile: file })).then(() => undefined),
      }));
      backupMetrics.succeeded(backup.sizeBytes);
      report.backup = backup;
      await transaction(control, async (client) => {
        await exec(client, insertBackup({ ...backup, runId, environment: env.name }));
        await recordWriteCounters(client, backup.id, counters);
        await exec(client, recordBackupTiming(backup.id, runId));
        // The backup a restore puts back: the newest one taken before any of the run's migrations landed.
        await exec(client, mergeApplyState(runId, drift.landed.length ? { pendingBackupFile: null } : { pendingBackupFile: null, pristineBackupId: backup.id }));
        await appendEvent(client, { runId, environment: env.name, type: 'backup.verified', actor, details: { id: backup.id, method: backup.method, sizeBytes: backup.sizeBytes, sha256: backup.sha256 } });
      });
    } catch (err) {
      backupMetrics.failed();
      return fail('backup', 'backup-failed', `No verified backup, so nothing was applied: ${(err as Error).message}`);
    }

    // 4. Migrate, lock-safe, recording each migration in the ledger as it lands; first the schema a rollback down must restore.
    report.notes.push(...(await recordPreApplySchema(ctx, run, env, drift.landed.length === 0)));
    await phase('migrate');
    const endMigrate = ctx.metrics.phaseTimer(env.name, 'migrate');
    const result = await migrate({
      environment: env,
      targetUrl,
      direction: 'up',
      migrations: remaining,
      source: sealedSnapshot(control, run, config.dataDir),
      applicationName: runApplicationName(runId, 'migrate'),
      // Started in a window: no lock retry may begin after it closes.
      budget: { ...env.lockRetries, deadline },
      log: runLog.phase('migrate'),
      onStarted: (position) => {
        progress.migrationStarted(position.migration, position.index, position.total);
        return event(runId, env.name, 'migration.started', actor, { ...position });
      },
      onProgress: (p) => progress.statement(p),
      onLockWait: (wait) => event(runId, env.name, 'migration.lock_wait', actor, { ...wait, lockTimeoutMs: env.lockTimeoutMs }),
      onStep: async (step) => {
        applied.push(step.name);
        await transaction(control, async (client) => {
          await exec(client, upsertLedger(env.name, step.name, step.sha256, runId));
          // Beside preflight's estimate: what later preflights of this environment calibrate with.
          await exec(client, recordMigrationTiming(env.name, runId, step.name, step.durationMs));
          await exec(client, mergeApplyState(runId, { applied }));
          await appendEvent(client, { runId, environment: env.name, type: 'migration.applied', actor, details: { ...step } });
        });
      },
    });
    await progress.clear();
    report.migrations = result.steps;
    report.lockRetries = result.lockRetries;
    endMigrate();
    ctx.metrics.migrationsApplied.inc({ environment: env.name }, result.steps.length);
    ctx.metrics.lockRetries.inc({ environment: env.name }, result.lockRetries);
    if (result.failure) {
      const f = result.failure;
      const what = f.transactional ? 'it was rolled back' : `it ran outside a transaction and may have partly landed: ${(f.partial ?? []).join('; ')}`;
      return fail('migrate', f.code, `${f.migration ?? 'The apply'} failed (${f.code}${f.sqlState ? `, SQLSTATE ${f.sqlState}` : ''}): ${f.message}; ${what}.`, f);
    }

    // 5. Verify, resume, monitor.
    fenced();
    await move(runId, 'verifying', 'system', { applied: applied.length, lockRetries: result.lockRetries }, { phase: 'verify' });
    const endVerify = ctx.metrics.phaseTimer(env.name, 'verify');
    let verified;
    try {
      verified = await verifyApply(ctx, run, env, new Date(report.startedAt));
    } catch (err) {
      // The target went away: verification_failed with the reason, not a run left verifying.
      if (!(err instanceof ServiceError) || err.statusCode !== 503) throw err;
      endVerify();
      report.notes.push(RUNBOOK_ON_FAILED_VERIFICATION);
      return fail('verify', 'target-unreachable', `Verification could not run: ${err.message} The run's ${applied.length} migration(s) were applied before that; check the target, then roll back or restore.`, {}, 'verification_failed');
    }
    endVerify();
    report.verification = verified.checks;
    report.smoke = verified.smoke;
    ctx.metrics.verificationChecks(env.name, report.verification);
    const failed = report.verification.filter((c) => c.status === 'fail');
    if (failed.length) {
      report.notes.push(RUNBOOK_ON_FAILED_VERIFICATION);
      return fail('verify', 'verification-failed', `Verification failed: ${failed.map((c) => c.detail).join(' ')}`, {}, 'verification_failed');
    }
    await runLog.write('verify', 'info', `verification passed (${report.verification.length} checks${verified.smoke?.ok ? ', smoke ETL ok' : ''})`);
    await phase('resume');
    await resume('apply succeeded');
    report.outcome = 'succeeded';
    await runLog.write('apply', 'info', `applied ${result.steps.length} migration(s) with ${result.lockRetries} lock retr${result.lockRetries === 1 ? 'y' : 'ies'}`);
    const unwatched = await nothingToWatch(ctx, env);
    if (unwatched) {
      report.notes.push(unwatched);
      await runLog.write('monitor', 'info', unwatched);
      fenced();
      return finish('succeeded', null);
    }
    // The watch's window, baseline and the report so far go with the run: any replica can end the watch on time.
    const watch = { window: watchWindow(new Date(), env.verify.watchMinutes), baseline };
    fenced();
    await move(runId, 'monitoring', 'system', { watchMinutes: env.verify.watchMinutes, endsAt: watch.window.endsAt }, { phase: 'watch', watch, report });
    await runLog.write('monitor', 'info', `watching the ETL for ${env.verify.watchMinutes} min against the pre-apply baseline (until ${watch.window.endsAt})`);
    const outcome = await completeWatch(ctx, await loadRun(runId), actor, AbortSignal.any([shutdown.signal, fence]));
    if (outcome === 'finished') endTotal();
  }

  async function report(runId: string): Promise<{ report: ApplyReport; createdAt: string } | null> {
    const row = await maybeOne<{ body: ApplyReport; created_at: Date }>(control, latestReport(runId, 'apply'));
    if (row) return { report: row.body, createdAt: row.created_at.toISOString() };
    // Monitoring: the report so far (verification passed) is served at once; its watch section fills in when the watch ends.
    const run = await maybeOne<StoredRun>(control, selectRun(runId));
    const sofar = run?.status === 'monitoring' ? run.apply_state.report : undefined;
    if (!run || !sofar) return null;
    const endsAt = run.apply_state.watch?.window.endsAt;
    return { report: { ...sofar, watch: null, notes: [...sofar.notes, `The post-apply watch is running${endsAt ? ` until ${endsAt}` : ''}; this report's watch section fills in when it ends.`] }, createdAt: run.updated_at.toISOString() };
  }

  /**
   * Reconciliation of in-flight runs whose owner is gone (services/apply/reconcile.ts):
   * at start-up every one whose apply lock is free, in the periodic sweep only
   * those whose lease lapsed. Applying/verifying runs become interrupted; a
   * monitoring run's watch is carried on here until it ends.
   */
  async function reconcile(opts: { expiredLeasesOnly?: boolean } = {}): Promise<string[]> {
    return reconcileInFlight(ctx, { lease, background, stop: shutdown.signal }, opts);
  }

  // Shared by request(), reapply() and the scheduler: lock, move to applying under a lease, run the pipeline.
  const start = createStarter({ control, log, background, lease, pipeline });

  async function close(): Promise<void> {
    shutdown.abort();
    await background.close();
  }

  return {
    request, reapply, start, report, reconcile, lease, idle: background.idle, close,
    /** Ends a monitoring run's watch now (services/apply/watch-end.ts). */
    endWatch: async (runId: string, principal: Principal, reason: string) => endWatchEarly(ctx, runId, principal.subject, reason),
    /** interrupted -> failed when nothing of the run landed (services/apply/close-run.ts). */
    closeInterrupted: (runId: string, principal: Principal, reason: string) => closeInterrupted(ctx, runId, principal, reason),
  };
}

export type ApplyService = ReturnType<typeof createApplyService>;
