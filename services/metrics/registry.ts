import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import type { EnvironmentConfig } from '../environments/model.js';
import { createBackfillMetrics } from './backfills.js';
import { RUN_PHASES, createEventMetrics } from './events.js';
import { NOTIFICATION_OUTCOMES, VERIFICATION_CHECKS, notifyKinds } from './known-series.js';

const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * The service's Prometheus metrics: one registry per app instance (never
 * prom-client's global one), so tests and several apps in one process do not
 * share counters.
 */
export function createMetrics() {
  const registry = new Registry();
  // process_* (CPU, memory, file descriptors, start time) and nodejs_* (event
  // loop lag, heap, GC): what an SRE looks at first when the service misbehaves.
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters (promtool check metrics flags them); the
  // by-type gauges of the same name without _total carry the same figures.
  for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  const etlProcessed = new Counter({
    name: 'starforge_etl_snapshots_processed_total',
    help: 'Hero snapshots the ETL worker processed successfully.',
    labelNames: ['environment'] as const,
    registers: [registry],
  });
  const etlFailed = new Counter({
    name: 'starforge_etl_snapshots_failed_total',
    help: 'Hero snapshots the ETL worker failed to process (each failed attempt counts).',
    labelNames: ['environment'] as const,
    registers: [registry],
  });
  const notifications = new Counter({
    name: 'starforge_notifications_total',
    help: 'Webhook delivery attempts by outcome: delivered, retrying (failed, will retry) or failed (given up).',
    labelNames: ['environment', 'kind', 'outcome'] as const,
    registers: [registry],
  });
  const events = createEventMetrics(registry);

  /**
   * Zero samples for every label value known from the config (environments,
   * their notify kinds) and the code (outcomes, verification checks): a
   * counter exported from the first scrape makes increase() see its first event.
   */
  function initKnownSeries(environments: Record<string, EnvironmentConfig>): void {
    events.initEnvironments(Object.keys(environments), [etlProcessed, etlFailed]);
    for (const env of Object.values(environments)) {
      for (const kind of notifyKinds(env)) for (const outcome of NOTIFICATION_OUTCOMES) notifications.inc({ environment: env.name, kind, outcome }, 0);
      for (const check of VERIFICATION_CHECKS) events.verificationFailures.inc({ environment: env.name, check }, 0);
      for (const outcome of ['success', 'failure']) events.backupDuration.zero({ environment: env.name, outcome });
      for (const phase of RUN_PHASES) events.phaseDuration.zero({ environment: env.name, phase });
    }
  }

  // Run, backup, verification and HTTP metrics observed where they happen (events.ts).
  return { registry, etlProcessed, etlFailed, notifications, ...events, ...createBackfillMetrics(registry), initKnownSeries };
}

export type Metrics = ReturnType<typeof createMetrics>;
