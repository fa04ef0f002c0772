import { exec, maybeOne, transaction } from '../../database/db.js';
import { insertBackup, mergeApplyState, upsertLedger } from '../../database/sql/apply.js';
import { insertReport, latestReport } from '../../database/sql/reports.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import type { EnvironmentConfig } from '../../src/config/environments.js';
import { PROJECT_ROOT } from '../../src/paths.js';
import { appendEvent } from '../audit.js';
import { createBackground } from '../background.js';
import type { ServiceContext } from '../context.js';
import { conflict, notFound, ServiceError, unprocessable } from '../errors.js';
import { computePending, readAppliedMigrations, readMigrationFiles } from '../migrations/pending.js';
import { sealPendingSet } from '../migrations/seal.js';
import { sealedSnapshot } from '../migrations/snapshot.js';
import { sealedSnapshotProblem } from '../migrations/snapshot-store.js';
import type { Principal } from '../principal.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { createBackup, type BackupRecord } from './backup.js';
import { migrate, type AppliedStep, type MigrateFailure } from './migrate.js';
import { runLogger } from './run-log.js';
import { verifyApply, type SmokeOutcome, type VerificationCheck } from '../verify/verify.js';
import { baselineWindow, etlRates, watchEtl, type WatchOutcome } from '../verify/watch.js';
import { pauseWorkers, resumeWorkers, type PauseState } from './workers.js';
import { reconcileInterrupted, type Reconciliation } from './reconcile.js';
import { createStarter } from './start.js';
import { createLease } from '../scheduler/lease.js';
import { armConfirmed, decideConfirmation, recordConfirmation, type ConfirmOutcome } from '../policy/confirm.js';
import { requestOverride } from '../policy/override-request.js';
import { recordWriteCounters, snapshotWriteCounters } from '../rollback-plan/write-counters.js';

export interface ApplyInput {
  confirm: string;
  overrideWindow?: boolean;
  reason?: string;
}


export interface ApplyReport {
  runId: string;
  environment: string;
  outcome: 'succeeded' | 'failed' | 'verification_failed' | 'interrupted';
  /** Set when the run was marked interrupted: what the dead process left on the target. */
  reconciliation?: Reconciliation;
  actor: string;
  startedAt: string;
  finishedAt: string;
  backup: BackupRecord | null;
  workers: { method: string; pausedAt: string | null; previousReplicas: number | null; resumed: boolean; note: string | null } | null;
  migrations: AppliedStep[];
  lockRetries: number;
  failure: (Omit<Partial<MigrateFailure>, 'code'> & { code: string; message: string; phase: string }) | null;
  verification: VerificationCheck[];
  smoke: SmokeOutcome | null;
  watch: WatchOutcome | null;
  notes: string[];
}

const APPLYABLE: RunStatus[] = ['approved', 'scheduled'];
const RUNBOOK_ON_FAILED_VERIFICATION =
  'Runbook decision flow: if the migration has a safe down, ask for a rollback (mode "down"); if not, restore the backup (mode "restore"). Workers stay paused until then.';

/** Why the approved content and the target no longer match, or null when they do. */
export async function driftOf(ctx: ServiceContext, run: RunRow, env: EnvironmentConfig): Promise<string | null> {
  const unsealed = await sealedSnapshotProblem(ctx.control, run);
  if (unsealed) return unsealed;
  const files = await readMigrationFiles(env);
  const applied = await ctx.targets.withClient(env, (client) => readAppliedMigrations(client, env));
  let set;
  try {
    set = computePending(files, applied, env.name, run.target_to ?? undefined);
  } catch (err) {
    return (err as Error).message;
  }
  const sealed = await sealPendingSet(env, set);
  const unsealable = sealed.problems.find((p) => p.severity === 'error');
  if (unsealable) return unsealable.message;
  set = sealed.set;
  const approved = run.migrations.map((m) => m.name).join(', ');
  const now = set.pending.map((m) => m.name).join(', ');
  if (set.digest === run.digest) return null;
  return now === approved
    ? `the content of the pending migrations changed since approval (digest ${run.digest.slice(0, 12)}… is now ${set.digest.slice(0, 12)}…)`
    : `the pending set changed since approval (approved: ${approved || 'none'}; now pending: ${now || 'none'})`;
}

/**
 * The runbook's apply as one audited pipeline: drift check, pause workers,
 * verified backup, lock-safe migrate, verify, resume workers, monitor.
 * Whoever holds the run's apply lock runs it; a process that dies mid-apply
 * leaves the lock free, and start-up marks such runs interrupted.
 */
export function createApplyService(ctx: ServiceContext) {
  const { control, config, log } = ctx;
  const background = createBackground(log);
  // Aborted on close: a post-apply watch ends early instead of holding shutdown for watchMinutes.
  const shutdown = new AbortController();

  async function loadRun(runId: string): Promise<RunRow> {
    const run = await maybeOne<RunRow>(control, selectRun(runId));
    if (!run) throw notFound(`Run ${runId} does not exist.`);
    return run;
  }

  async function request(runId: string, principal: Principal, input: ApplyInput, now = new Date()): Promise<ConfirmOutcome> {
    const run = await loadRun(runId);
    const env = config.environments[run.environment];
    if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
    if (input.confirm !== run.environment) {
      throw unprocessable(`"confirm" must be the environment name ("${run.environment}") to apply this run.`, { errors: [{ path: 'body/confirm', message: 'must equal the environment name' }] });
    }
    if (!APPLYABLE.includes(run.status as RunStatus)) {
      throw conflict(`Run ${runId} is ${run.status}; only approved or scheduled runs can be applied.`, { currentStatus: run.status });
    }
    const freeze = env.freezes.find((f) => f.from <= now && now < f.to);
    if (freeze) throw conflict(`${env.name} is frozen until ${freeze.to.toISOString()} (${freeze.reason}); a freeze always wins.`);
    // The operator's confirmation: now inside a window, else armed for the next one, or a co-signed override (services/policy).
    const confirmation = decideConfirmation(env, input, now);
    const drift = await driftOf(ctx, run, env);
    if (drift) {
      await transaction(control, (client) => appendEvent(client, {
        runId, environment: run.environment, type: 'apply.refused', actor: principal.subject, details: { code: 'drift', reason: drift },
      }));
      throw conflict(`Refused: ${drift}. Nothing was changed; re-run preflight and get the new content approved.`, { code: 'drift' });
    }
    if (confirmation.kind === 'arm') return armConfirmed(ctx, runId, principal, env, confirmation.next, now);
    if (confirmation.kind === 'override') return requestOverride(ctx, runId, principal, env, confirmation.reason, confirmation.next);
    const started = await start(runId, principal.subject, {
      expect: APPLYABLE,
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

  async function event(runId: string, environment: string, type: string, actor: string, details: Record<string, unknown>): Promise<void> {
    await transaction(control, (client) => appendEvent(client, { runId, environment, type, actor, details }));
  }

  async function move(runId: string, to: RunStatus, actor: string, details: Record<string, unknown>, error?: object | null): Promise<void> {
    await transaction(control, async (client) => {
      const locked = await lockRunForUpdate(client, runId);
      await transition(client, locked, to, { actor, details, patch: error === undefined ? {} : { error } });
    });
  }

  async function pipeline(runId: string, actor: string, deadline: Date | null = null): Promise<void> {
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
    let paused: PauseState | null = null;

    const fail = async (phase: string, code: string, message: string, extra: Omit<Partial<MigrateFailure>, 'code' | 'message'> = {}, status: RunStatus = 'failed') => {
      report.failure = { ...extra, phase, code, message };
      report.outcome = status === 'verification_failed' ? 'verification_failed' : 'failed';
      await runLog.write(phase, 'error', message);
      if (paused && env.workers.resumeOnFailure) await resume(`apply failed (${code})`);
      else if (paused) report.notes.push('Workers stay paused after the failure (workers.resumeOnFailure is off): resume them once the target is safe.');
      await finish(status, { code, message, phase, migration: extra.migration ?? null, statement: extra.statement ?? null, sqlState: extra.sqlState ?? null, partial: extra.partial ?? null });
    };

    const finish = async (status: RunStatus, error: object | null) => {
      report.finishedAt = new Date().toISOString();
      endTotal();
      await runLog.flush();
      await transaction(control, async (client) => {
        const locked = await lockRunForUpdate(client, runId);
        await exec(client, insertReport(runId, 'apply', run.digest, report));
        await transition(client, locked, status, { actor: 'system', details: error ? { error } : { report: 'apply' }, patch: { error } });
      });
    };

    const resume = async (why: string) => {
      if (!paused) return;
      try {
        await resumeWorkers(paused, { environment: env, targetUrl, runId, actor, reason: why, log: runLog.phase('workers') });
        report.workers = { ...report.workers!, resumed: true };
        await exec(control, mergeApplyState(runId, { workersPaused: false }));
        await event(runId, env.name, 'workers.resumed', actor, { method: paused.method, reason: why });
      } catch (err) {
        await runLog.write('workers', 'error', `resuming workers failed: ${(err as Error).message}`);
        report.notes.push(`Resuming workers failed: ${(err as Error).message}`);
      }
    };

    await runLog.write('apply', 'info', `apply of ${run.migrations.length} migration(s) to ${env.name} started by ${actor}`);

    // 1. Drift, again: the approval covered exactly this content.
    const drift = await driftOf(ctx, run, env);
    if (drift) return fail('drift', 'drift', `Refused before any change: ${drift}.`);

    // The ETL's health before anything changes: what the post-apply watch compares against.
    const window = baselineWindow(new Date(report.startedAt), env.verify.watchMinutes);
    const baseline = await ctx.targets.withClient(env, (client) => etlRates(client, window.from, window.to)).catch(() => null);

    // 2. Workers.
    try {
      paused = await pauseWorkers({ environment: env, targetUrl, runId, actor, reason, log: runLog.phase('workers') });
      report.workers = { method: paused.method, pausedAt: paused.pausedAt, previousReplicas: paused.previousReplicas, resumed: false, note: paused.note };
      await exec(control, mergeApplyState(runId, { workersPaused: true, workers: paused }));
      await event(runId, env.name, 'workers.paused', actor, { method: paused.method, previousReplicas: paused.previousReplicas, note: paused.note });
    } catch (err) {
      return fail('workers', 'workers-pause-failed', `Pausing workers failed, so nothing was applied: ${(err as Error).message}`);
    }

    // 3. Backup: no verified backup, no apply.
    const backupMetrics = ctx.metrics.backupAttempt(env.name);
    try {
      const counters = await snapshotWriteCounters(ctx.targets, env, log);
      const backup = await createBackup({ environment: env, targetUrl, runId, dataDir: config.dataDir, projectRoot: PROJECT_ROOT, log: runLog.phase('backup') });
      backupMetrics.succeeded(backup.sizeBytes);
      report.backup = backup;
      await transaction(control, async (client) => {
        await exec(client, insertBackup({ ...backup, runId, environment: env.name }));
        await recordWriteCounters(client, backup.id, counters);
        await appendEvent(client, { runId, environment: env.name, type: 'backup.verified', actor, details: { id: backup.id, method: backup.method, sizeBytes: backup.sizeBytes, sha256: backup.sha256 } });
      });
    } catch (err) {
      backupMetrics.failed();
      return fail('backup', 'backup-failed', `No verified backup, so nothing was applied: ${(err as Error).message}`);
    }

    // 4. Migrate, lock-safe, recording each migration in the ledger as it lands.
    const applied: string[] = [];
    const endMigrate = ctx.metrics.phaseTimer(env.name, 'migrate');
    const result = await migrate({
      environment: env,
      targetUrl,
      direction: 'up',
      migrations: run.migrations,
      source: sealedSnapshot(control, run, config.dataDir),
      // Started in a window: no lock retry may begin after it closes.
      budget: { ...env.lockRetries, deadline },
      log: runLog.phase('migrate'),
      onStep: async (step) => {
        applied.push(step.name);
        await transaction(control, async (client) => {
          await exec(client, upsertLedger(env.name, step.name, step.sha256, runId));
          await exec(client, mergeApplyState(runId, { applied }));
          await appendEvent(client, { runId, environment: env.name, type: 'migration.applied', actor, details: { ...step } });
        });
      },
    });
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
    await move(runId, 'verifying', 'system', { applied: applied.length, lockRetries: result.lockRetries });
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
    await resume('apply succeeded');
    await move(runId, 'monitoring', 'system', { watchMinutes: env.verify.watchMinutes });
    await runLog.write('monitor', 'info', `watching the ETL for ${env.verify.watchMinutes} min against the pre-apply baseline`);
    report.watch = await watchEtl((fn) => ctx.targets.withClient(env, fn), baseline, env.verify.watchMinutes, env.verify.degradeFactor, shutdown.signal);
    await runLog.write('monitor', report.watch.degraded ? 'warn' : 'info', report.watch.detail);
    report.outcome = 'succeeded';
    await runLog.write('apply', 'info', `applied ${applied.length} migration(s) with ${result.lockRetries} lock retr${result.lockRetries === 1 ? 'y' : 'ies'}`);
    if (report.watch.degraded) {
      report.notes.push(`Degraded: ${report.watch.detail} ${RUNBOOK_ON_FAILED_VERIFICATION}`);
      return finish('degraded', { code: 'degraded', message: report.watch.detail });
    }
    await finish('succeeded', null);
  }

  async function report(runId: string): Promise<{ report: ApplyReport; createdAt: string } | null> {
    const row = await maybeOne<{ body: ApplyReport; created_at: Date }>(control, latestReport(runId, 'apply'));
    return row ? { report: row.body, createdAt: row.created_at.toISOString() } : null;
  }

  /**
   * Reconciliation: a run left applying, verifying or monitoring by a process
   * that died (its apply lock is free) becomes interrupted, with what landed
   * recorded in its report (services/apply/reconcile.ts). At start-up every
   * in-flight run is checked; the scheduler's sweep passes expiredLeasesOnly.
   */
  async function reconcile(opts: { expiredLeasesOnly?: boolean } = {}): Promise<string[]> {
    return reconcileInterrupted(ctx, opts);
  }

  // Shared by request() and the scheduler: lock, move to applying under a lease, run the pipeline.
  const lease = createLease(control, log);
  const start = createStarter({ control, log, background, lease, pipeline });

  async function close(): Promise<void> {
    shutdown.abort();
    await background.close();
  }

  return { request, start, report, reconcile, idle: background.idle, close };
}

export type ApplyService = ReturnType<typeof createApplyService>;
