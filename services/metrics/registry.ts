import { Counter, Registry } from 'prom-client';
import { createBackfillMetrics } from './backfills.js';
import { createEventMetrics } from './events.js';

/**
 * The service's Prometheus metrics: one registry per app instance (never
 * prom-client's global one), so tests and several apps in one process do not
 * share counters.
 */
export function createMetrics() {
  const registry = new Registry();
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
  // Run, backup, verification and HTTP metrics observed where they happen (events.ts).
  return { registry, etlProcessed, etlFailed, notifications, ...createEventMetrics(registry), ...createBackfillMetrics(registry) };
}

export type Metrics = ReturnType<typeof createMetrics>;
