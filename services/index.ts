import type pg from 'pg';
import { describeConnectionError } from '../database/pg-errors.js';
import type { AppConfig } from '../src/config/index.js';
import { exec } from '../database/db.js';
import { ping } from '../database/sql/target.js';
import { listRunEvents } from './audit.js';
import { createApplyService } from './apply/apply-service.js';
import { renderRunLog } from './apply/run-log.js';
import { createRollbackService } from './apply/rollback-service.js';
import { createApprovalsService } from './approvals/approvals-service.js';
import type { ServiceContext } from './context.js';
import { createEnvironmentsService } from './environments.js';
import type { Logger } from './logger.js';
import { createPreflightService } from './preflight/preflight-service.js';
import { createAcknowledgementsService } from './preflight/acknowledgements-service.js';
import { createRunsService } from './runs/runs-service.js';
import { createEtlWorkers } from './etl/worker.js';
import { createMetrics } from './metrics/registry.js';
import { registerStateMetrics } from './metrics/state.js';
import { createEtlControlService } from './etl/control.js';
import { createEtlHealthService } from './etl/health.js';
import { TargetDatabases } from './targets.js';
import { createScheduler } from './scheduler/scheduler-service.js';
import { createNotifier } from './notify/notifier.js';
import { createBackfillsService } from './backfills/backfills-service.js';
import { createBackfillExecutor } from './backfills/executor.js';
import { createOverridesService } from './policy/overrides-service.js';
import { promotionOf } from './policy/promotion.js';
import { planRollback } from './rollback-plan/plan.js';
import { createRecoveryLoop } from './apply/recovery-loop.js';
import { createEventStreams } from './events/streams.js';
import { createWaitingService } from './me/waiting.js';

export interface ServicesOptions {
  control: pg.Pool;
  config: AppConfig;
  log: Logger;
}

/** Wires every service onto one control pool and one set of target pools. */
export function createServices({ control, config, log }: ServicesOptions) {
  const targets = new TargetDatabases(config.targetUrls, log);
  const metrics = createMetrics();
  const ctx: ServiceContext = { control, config, log, targets, metrics };
  metrics.initKnownSeries(config.environments);
  // Runs by status, pending migrations, ETL backlog...: read when /metrics is scraped.
  const stateMetrics = registerStateMetrics(ctx);
  const etlHealth = createEtlHealthService(ctx);
  const etlControl = createEtlControlService(ctx);
  const preflight = createPreflightService(ctx);
  const runs = createRunsService({
    ...ctx,
    onCreated: (runId) => {
      preflight.request(runId, 'system').catch((err) => log.error({ err, runId }, 'could not start preflight'));
    },
  });
  const approvals = createApprovalsService(ctx);
  const acknowledgements = createAcknowledgementsService(ctx);
  const environments = createEnvironmentsService(ctx);
  const apply = createApplyService(ctx);
  const rollback = createRollbackService(ctx);
  const etlWorkers = createEtlWorkers(ctx);
  const scheduler = createScheduler(ctx, apply, rollback);
  const overrides = createOverridesService(ctx, apply);
  const rollbackPlans = { plan: (runId: string, mode: 'down' | 'restore') => planRollback(ctx, runId, mode) };
  // A third of a lease: a lapsed lease is noticed well within one more lease length.
  const recovery = createRecoveryLoop(() => apply.reconcile({ expiredLeasesOnly: true }), Math.max(1000, Math.min(5000, (config.applyLeaseSeconds * 1000) / 3)), log);
  const notifier = createNotifier(ctx);
  const backfills = createBackfillsService(ctx);
  const backfillExecutor = createBackfillExecutor(ctx);
  const events = createEventStreams({ ...ctx, runs }, config.eventStreams);
  const waiting = createWaitingService({ ...ctx, runs, rollback });

  const health = {
    /** null when the control database answers within 2 s, else a reason safe to show. */
    async controlDatabase(): Promise<string | null> {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          exec(control, ping()),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('timeout')), 2000);
          }),
        ]);
        return null;
      } catch (err) {
        return `control database: ${describeConnectionError(err)}`;
      } finally {
        clearTimeout(timer);
      }
    },
  };

  return {
    runs,
    approvals,
    acknowledgements,
    preflight,
    environments,
    apply,
    rollback,
    overrides,
    rollbackPlans,
    promotion: { of: (runId: string) => promotionOf(control, runId) },
    logs: { render: (runId: string) => renderRunLog(control, runId) },
    health,
    targets,
    metrics,
    stateMetrics,
    etlHealth,
    etlControl,
    audit: { runEvents: (runId: string) => listRunEvents(control, runId) },
    /** Background work that must start once the app listens. */
    etlWorkers,
    scheduler,
    notifier,
    backfills,
    backfillExecutor,
    events,
    waiting,
    async start(): Promise<void> {
      etlWorkers.start();
      await apply.reconcile();
      await preflight.resumeOrphans();
      scheduler.start();
      recovery.start();
      notifier.start();
      backfillExecutor.start();
    },
    /** Resolves when no background work (preflight, apply, rollback) is running. */
    async idle(): Promise<void> {
      await Promise.all([preflight.idle(), apply.idle(), rollback.idle(), scheduler.idle()]);
    },
    async close(): Promise<void> {
      await Promise.all([scheduler.stop(), recovery.stop(), notifier.stop(), backfillExecutor.stop(), events.close()]);
      await Promise.all([preflight.close(), apply.close(), rollback.close(), etlWorkers.stop()]);
      await targets.close();
    },
  };
}

export type Services = ReturnType<typeof createServices>;
