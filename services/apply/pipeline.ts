import { exec, transaction } from '../../database/db.js';
import { insertBackup, mergeApplyState, upsertLedger } from '../../database/sql/apply.js';
import { recordBackupTiming, recordMigrationTiming } from '../../database/sql/estimates.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { appendEvent } from '../audit.js';
import { processRecorder, runApplicationName } from '../child-processes.js';
import type { ServiceContext } from '../context.js';
import { ServiceError } from '../errors.js';
import { sealedSnapshot } from '../migrations/snapshot.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { recordWriteCounters, snapshotWriteCounters } from '../rollback-plan/write-counters.js';
import { verifyApply } from '../verify/verify.js';
import { baselineWindow, etlRates, watchWindow } from '../verify/watch.js';
import { finishApply, type ApplyReport } from './apply-report.js';
import type { ApplyPhase, ApplyState } from './apply-state.js';
import { createBackup } from './backup.js';
import { trackBackup } from './backup-progress.js';
import { checkDrift } from './drift.js';
import { migrate, type MigrateFailure } from './migrate.js';
import { withPause } from './pauses.js';
import { progressReporter } from './progress.js';
import { runLogger } from './run-log.js';
import { recordPreApplySchema } from './schema-baseline.js';
import { loadStoredRun } from './stored-run.js';
import { completeWatch, nothingToWatch } from './watch-phase.js';
import { pauseNotConfigured, pauseWorkers, resumeWorkers, WORKERS_NOT_CONFIGURED, type PauseState } from './workers.js';

const RUNBOOK_ON_FAILED_VERIFICATION =
  'Runbook decision flow: if the migration has a safe down, ask for a rollback (mode "down"); if not, restore the backup (mode "restore").';

export interface PipelineDeps {
  /** This process's lease owner name, recorded with the child processes it starts. */
  owner: string;
  /** Aborted on close: a post-apply watch is handed to another replica instead of holding shutdown for watchMinutes. */
  shutdown: AbortSignal;
}

/** The pipeline of one run: runs it from applying to its end (the starter calls it under the run's lock and lease). */
export type Pipeline = (runId: string, actor: string, deadline?: Date | null, fence?: AbortSignal) => Promise<void>;

/**
 * The runbook's apply as one audited pipeline: drift check, pause workers,
 * verified backup, lock-safe migrate, verify, resume workers, monitor. Each
 * phase is recorded before it starts, so a reconciler knows after a crash
 * where it stopped; a re-apply runs only what had not landed.
 */
export function createPipeline(ctx: ServiceContext, deps: PipelineDeps): Pipeline {
  const { control, config, log } = ctx;

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
    const run = await loadStoredRun(control, runId);
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
    const spawned = (phase: string) => processRecorder(control, runId, phase, deps.owner, log);
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
    const outcome = await completeWatch(ctx, await loadStoredRun(control, runId), actor, AbortSignal.any([deps.shutdown, fence]));
    if (outcome === 'finished') endTotal();
  }

  return pipeline;
}
