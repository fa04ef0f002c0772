import type pg from 'pg';
import { maybeOne, one, rows } from '../../database/db.js';
import { isPgError, LOCK_NOT_AVAILABLE, QUERY_CANCELED } from '../../database/pg-errors.js';
import { readEtlControl } from '../../database/sql/etl-control.js';
import { etlBacklog, etlErrorsSince, etlProcessedSince, etlTablesExist, recentEtlErrors } from '../../database/sql/metrics.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import { conflict, notFound, unavailable } from '../errors.js';
import { timedRead } from '../metrics/time-box.js';

const HOUR_SECONDS = 3600;
const RECENT_ERRORS = 10;
// The health endpoint is on demand (an operator, a CI gate), so it may take
// longer than a scrape; it still never hangs on a slow or locked target.
const HEALTH_STATEMENT_TIMEOUT_MS = 5000;
const HEALTH_LOCK_TIMEOUT_MS = 1000;

/** The ETL figures /metrics exports; a field is null when its table does not exist on the target (yet). */
export interface EtlGauges {
  backlog: number | null;
  oldestUnprocessedAgeSeconds: number | null;
  errorsLastHour: number | null;
  paused: boolean | null;
  pausedBy: string | null;
  pauseReason: string | null;
  changedAt: string | null;
}

interface ControlRow {
  paused: boolean;
  reason: string | null;
  changed_by: string | null;
  changed_at: Date;
}

/** Reads the cheap ETL figures (index scans only) in the caller's transaction. */
export async function readEtlGauges(client: pg.ClientBase): Promise<EtlGauges> {
  const exists = await one<{ snapshots: boolean; errors: boolean; control: boolean }>(client, etlTablesExist());
  const out: EtlGauges = { backlog: null, oldestUnprocessedAgeSeconds: null, errorsLastHour: null, paused: null, pausedBy: null, pauseReason: null, changedAt: null };
  if (exists.snapshots) {
    const b = await one<{ backlog: string; oldest_age_seconds: number | null }>(client, etlBacklog());
    out.backlog = Number(b.backlog);
    // No backlog, nothing waiting: an age of 0 keeps "too old" alerts quiet without a missing series.
    out.oldestUnprocessedAgeSeconds = Math.max(0, b.oldest_age_seconds ?? 0);
  }
  if (exists.errors) out.errorsLastHour = Number((await one<{ count: string }>(client, etlErrorsSince(HOUR_SECONDS))).count);
  if (exists.control) {
    const row = await maybeOne<ControlRow>(client, readEtlControl());
    if (row) {
      out.paused = row.paused;
      out.pausedBy = row.paused ? row.changed_by : null;
      out.pauseReason = row.paused ? row.reason : null;
      out.changedAt = row.changed_at.toISOString();
    }
  }
  return out;
}

export interface EtlError {
  id: string;
  snapshotId: string | null;
  errorType: string;
  message: string;
  createdAt: string;
}

export interface EtlHealth {
  environment: string;
  backlog: number;
  oldestUnprocessedAgeSeconds: number;
  processedLastHour: number;
  failedLastHour: number;
  recentErrors: EtlError[];
  paused: boolean;
  pausedBy: string | null;
  pauseReason: string | null;
  changedAt: string | null;
}

export function environmentOf(ctx: ServiceContext, name: string): EnvironmentConfig {
  const env = ctx.config.environments[name];
  if (!env) throw notFound(`Unknown environment "${name}"; configured: ${Object.keys(ctx.config.environments).join(', ')}.`);
  return env;
}

/** A statement or lock timeout on the target is an outage for the caller (503), not a refused read (422). */
export function targetTimeout(err: unknown, env: EnvironmentConfig): unknown {
  if (isPgError(err, QUERY_CANCELED) || isPgError(err, LOCK_NOT_AVAILABLE)) {
    return unavailable(`The ${env.name} database did not answer in time (${isPgError(err, LOCK_NOT_AVAILABLE) ? 'lock wait' : 'statement timeout'}); retry shortly.`);
  }
  return err;
}

/** GET /v1/etl/health: the /metrics ETL figures plus the last hour's throughput and the latest errors. */
export function createEtlHealthService(ctx: ServiceContext) {
  async function health(environment: string): Promise<EtlHealth> {
    const env = environmentOf(ctx, environment);
    return ctx.targets.withClient(env, async (client) => {
      try {
        return await timedRead(client, HEALTH_STATEMENT_TIMEOUT_MS, HEALTH_LOCK_TIMEOUT_MS, async (c) => {
          const gauges = await readEtlGauges(c);
          if (gauges.backlog === null || gauges.errorsLastHour === null || gauges.paused === null) {
            throw conflict(`The ${env.name} database has no ETL tables yet (hero_snapshots, etl_errors, etl_control): apply the StarForge migrations first.`);
          }
          const processed = await one<{ count: string }>(c, etlProcessedSince(HOUR_SECONDS));
          const errors = await rows<{ id: string; snapshot_id: string | null; error_type: string; message: string; created_at: Date }>(c, recentEtlErrors(RECENT_ERRORS));
          return {
            environment: env.name,
            backlog: gauges.backlog,
            oldestUnprocessedAgeSeconds: gauges.oldestUnprocessedAgeSeconds ?? 0,
            processedLastHour: Number(processed.count),
            failedLastHour: gauges.errorsLastHour,
            recentErrors: errors.map((e) => ({ id: e.id, snapshotId: e.snapshot_id, errorType: e.error_type, message: e.message, createdAt: e.created_at.toISOString() })),
            paused: gauges.paused,
            pausedBy: gauges.pausedBy,
            pauseReason: gauges.pauseReason,
            changedAt: gauges.changedAt,
          };
        });
      } catch (err) {
        throw targetTimeout(err, env);
      }
    });
  }

  return { health };
}

export type EtlHealthService = ReturnType<typeof createEtlHealthService>;
