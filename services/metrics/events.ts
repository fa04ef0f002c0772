import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

// Event-style metrics: observed by this process where the thing happens
// (apply pipeline, preflight, HTTP). They count what this replica did, so a
// dashboard sums them across replicas. State (runs by status, pending
// migrations, ETL backlog) is read at scrape time instead: see state.ts.

/** Run phases timed into starforge_run_phase_duration_seconds. */
export const RUN_PHASES = ['preflight', 'backup', 'migrate', 'verify', 'total', 'rollback', 'restore'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

// From a one-second preflight to a six-hour dump: one bucket layout for every phase.
const PHASE_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createEventMetrics(registry: Registry) {
  const registers = [registry];
  const phaseDuration = new Histogram({
    name: 'starforge_run_phase_duration_seconds',
    help: 'Duration of run phases (preflight, backup, migrate, verify, total for the whole apply; rollback and restore), failed attempts included.',
    labelNames: ['environment', 'phase'] as const,
    buckets: PHASE_BUCKETS,
    registers,
  });
  const migrationsApplied = new Counter({
    name: 'starforge_migrations_applied_total',
    help: 'Migrations the apply pipeline applied (committed on the target).',
    labelNames: ['environment'] as const,
    registers,
  });
  const lockRetries = new Counter({
    name: 'starforge_lock_timeout_retries_total',
    help: 'Migration attempts retried after hitting lock_timeout (SQLSTATE 55P03).',
    labelNames: ['environment'] as const,
    registers,
  });
  const backups = new Counter({
    name: 'starforge_backups_total',
    help: 'Verified backups taken before an apply.',
    labelNames: ['environment'] as const,
    registers,
  });
  const backupFailures = new Counter({
    name: 'starforge_backup_failures_total',
    help: 'Backups that could not be made or verified (the apply stopped before changing anything).',
    labelNames: ['environment'] as const,
    registers,
  });
  const backupBytes = new Counter({
    name: 'starforge_backup_bytes_total',
    help: 'Bytes of verified backups taken (pg_dump file sizes; external snapshots report none).',
    labelNames: ['environment'] as const,
    registers,
  });
  const backupSize = new Gauge({
    name: 'starforge_backup_last_size_bytes',
    help: 'Size of the most recent verified backup this process took.',
    labelNames: ['environment'] as const,
    registers,
  });
  const applyProgress = new Gauge({
    name: 'starforge_apply_progress_ratio',
    help: 'Done/total of the running step of an apply, rollback or restore (backup bytes, migrations, an index build, CLUSTER/VACUUM FULL, pg_restore bytes); absent when none runs.',
    labelNames: ['environment'] as const,
    registers,
  });
  const applyProgressEta = new Gauge({
    name: 'starforge_apply_progress_eta_seconds',
    help: 'Estimated seconds left of the running step (as etaSeconds of GET /v1/runs/:id); absent when none runs or it has no estimate.',
    labelNames: ['environment'] as const,
    registers,
  });
  const backupDuration = new Histogram({
    name: 'starforge_backup_duration_seconds',
    help: 'Time to make and verify a backup, failed attempts included.',
    labelNames: ['environment', 'outcome'] as const,
    buckets: PHASE_BUCKETS,
    registers,
  });
  const verificationFailures = new Counter({
    name: 'starforge_verification_check_failures_total',
    help: 'Post-apply verification checks that failed, by check id.',
    labelNames: ['environment', 'check'] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: 'starforge_http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern (never the raw URL) and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_BUCKETS,
    registers,
  });

  /** Times one backup attempt; the first of succeeded()/failed() counts, later calls do nothing. */
  function backupAttempt(environment: string) {
    const started = performance.now();
    let done = false;
    const seconds = () => (performance.now() - started) / 1000;
    return {
      succeeded(sizeBytes: number | null): void {
        if (done) return;
        done = true;
        const s = seconds();
        backups.inc({ environment });
        backupDuration.observe({ environment, outcome: 'success' }, s);
        phaseDuration.observe({ environment, phase: 'backup' }, s);
        if (sizeBytes !== null) {
          backupBytes.inc({ environment }, sizeBytes);
          backupSize.set({ environment }, sizeBytes);
        }
      },
      failed(): void {
        if (done) return;
        done = true;
        const s = seconds();
        backupFailures.inc({ environment });
        backupDuration.observe({ environment, outcome: 'failure' }, s);
        phaseDuration.observe({ environment, phase: 'backup' }, s);
      },
    };
  }

  /** The running step's progress (runs.progress) as the two gauges; null removes them. */
  function applyProgressOf(environment: string, p: { done: number; total: number; etaSeconds: number | null } | null): void {
    if (p && p.total > 0) applyProgress.set({ environment }, Math.min(1, p.done / p.total));
    else applyProgress.remove({ environment });
    if (p && p.etaSeconds !== null) applyProgressEta.set({ environment }, p.etaSeconds);
    else applyProgressEta.remove({ environment });
  }

  /** Starts timing a phase; the returned function observes it (once). */
  function phaseTimer(environment: string, phase: RunPhase): () => void {
    const end = phaseDuration.startTimer({ environment, phase });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      end();
    };
  }

  /** Counts the failed checks of one verification. */
  function verificationChecks(environment: string, checks: ReadonlyArray<{ id: string; status: string }>): void {
    for (const check of checks) if (check.status === 'fail') verificationFailures.inc({ environment, check: check.id });
  }

  /**
   * Zero samples for every configured environment, so rate() and increase()
   * see a counter from its first scrape instead of missing its first event.
   */
  function initEnvironments(environments: string[], others: Array<Counter<'environment'>> = []): void {
    for (const environment of environments) {
      for (const counter of [migrationsApplied, lockRetries, backups, backupFailures, backupBytes, ...others]) counter.inc({ environment }, 0);
    }
  }

  return {
    phaseDuration, migrationsApplied, lockRetries, backups, backupFailures, backupBytes, backupSize, backupDuration, applyProgress, applyProgressEta, applyProgressOf,
    verificationFailures, httpDuration, backupAttempt, phaseTimer, verificationChecks, initEnvironments,
  };
}

export type EventMetrics = ReturnType<typeof createEventMetrics>;
