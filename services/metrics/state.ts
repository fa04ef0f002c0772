import { performance } from 'node:perf_hooks';
import { Counter, Gauge } from 'prom-client';
import { rows } from '../../database/db.js';
import { describeConnectionError } from '../../database/pg-errors.js';
import {
  activeRunAges, lastSucceededRun, runCountsByStatus, transitionCounts, type ActiveRunMetricRow,
} from '../../database/sql/metrics.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import { readEtlGauges, type EtlGauges } from '../etl/health.js';
import { computePending, readAppliedMigrations, readMigrationFiles } from '../migrations/pending.js';
import { ACTIVE_STATUSES, RUN_STATUSES } from '../runs/state-machine.js';
import { openWindowAt } from '../windows/windows.js';
import { ServiceError } from '../errors.js';
import { RUN_TRANSITIONS } from './known-series.js';
import { SingleFlight, TimedOut, timeBox, timedRead } from './time-box.js';

// State-style metrics: read from the control database and the targets when
// Prometheus scrapes, so every replica reports the same figures (a dashboard
// takes max() across replicas, not sum()). A scrape must stay cheap and must
// never hang: figures are cached briefly, each database gets a time box, and
// a database that does not answer in time shows as up == 0 while its figures
// are left out of that scrape (never stale values that look healthy).

/** Whether a maintenance window is open now; null when unknown (the series is left out). */
export type WindowOpenFn = (env: EnvironmentConfig, at: Date) => boolean | null;

/**
 * The config contract: no windows = any time. Otherwise the scheduler's window
 * math (services/windows/). Freezes are left out here on purpose: they have
 * their own gauge (starforge_freeze_active), so a dashboard shows "window
 * open, but frozen" rather than a window that seems to have vanished.
 */
export const windowOpenNow: WindowOpenFn = (env, at) => (env.windows.length === 0 ? true : openWindowAt(env.windows, [], at) !== null);

export interface StateMetricsOptions {
  /** How long one set of figures is served before the databases are asked again (default 5 s). */
  cacheMs?: number;
  /** Time box per database (control, each target) for one refresh (default 1 s). */
  timeoutMs?: number;
  windowOpen?: WindowOpenFn;
}

interface ControlFigures {
  runs: Array<{ environment: string; status: string; count: string }>;
  lastSucceeded: Array<{ environment: string; at: Date | null }>;
  active: ActiveRunMetricRow[];
  transitions: Array<{ environment: string; from_status: string; to_status: string; count: number }>;
}

interface TargetFigures {
  /** null when the pending set cannot be computed (unreadable directory, order problem). */
  pending: number | null;
  etl: EtlGauges;
}

interface Figures {
  control: ControlFigures | null;
  /** By environment: null = configured but did not answer in time; absent = not configured. */
  targets: Map<string, TargetFigures | null>;
}

export function registerStateMetrics(ctx: ServiceContext, opts: StateMetricsOptions = {}) {
  const { control, config, targets, log, metrics } = ctx;
  const cacheMs = opts.cacheMs ?? 5000;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const windowOpen = opts.windowOpen ?? windowOpenNow;
  const environments = Object.values(config.environments);
  const names = environments.map((e) => e.name);
  const registers = [metrics.registry];

  // ------------------------------------------------------------ reading

  const controlRead = new SingleFlight<ControlFigures>(async () => {
    const client = await control.connect();
    try {
      return await timedRead(client, timeoutMs, timeoutMs / 2, async (c) => ({
        runs: await rows(c, runCountsByStatus(names, RUN_STATUSES)),
        lastSucceeded: await rows(c, lastSucceededRun(names)),
        active: await rows(c, activeRunAges(names, ACTIVE_STATUSES)),
        transitions: await rows(c, transitionCounts(names)),
      }));
    } finally {
      client.release();
    }
  });

  const targetReads = new Map(environments.map((env) => [env.name, new SingleFlight<TargetFigures>(async () => {
    const files = await readMigrationFiles(env).catch(() => null);
    return targets.withClient(env, (client) => timedRead(client, timeoutMs, timeoutMs / 2, async (c) => {
      const applied = await readAppliedMigrations(c, env);
      let pending: number | null = null;
      try {
        if (files) pending = computePending(files, applied, env.name).pending.length;
      } catch {
        /* an order problem: preflight and GET /v1/environments say what is wrong */
      }
      return { pending, etl: await readEtlGauges(c) };
    }));
  })]));

  // Log when a database stops or starts answering, not at every scrape.
  const lastUp = new Map<string, boolean>();
  function noteUp(source: string, up: boolean, err?: unknown): void {
    const previous = lastUp.get(source);
    if (previous === up) return;
    lastUp.set(source, up);
    const wasDown = previous === false;
    if (up) {
      // Only after an outage: the first successful read is not news.
      if (wasDown) log.info({ source }, 'metrics: database answers again');
      return;
    }
    // Our own errors (time box, "Cannot connect to the staging database: …") name no host or credential.
    const reason = err instanceof TimedOut || err instanceof ServiceError ? err.message : describeConnectionError(err);
    log.warn({ source, reason }, 'metrics: database did not answer; reporting it down');
  }

  async function timed<T>(source: string, flight: SingleFlight<T>): Promise<T | null> {
    try {
      const value = await timeBox(flight.run(), timeoutMs, source);
      noteUp(source, true);
      return value;
    } catch (err) {
      noteUp(source, false, err);
      return null;
    }
  }

  async function gather(): Promise<Figures> {
    const configured = environments.filter((env) => targets.isConfigured(env.name));
    const [controlFigures, ...targetFigures] = await Promise.all([
      timed('control', controlRead),
      ...configured.map((env) => timed(`target ${env.name}`, targetReads.get(env.name)!)),
    ]);
    return { control: controlFigures ?? null, targets: new Map(configured.map((env, i) => [env.name, targetFigures[i] ?? null])) };
  }

  let cached: { at: number; figures: Figures } | null = null;
  let refreshing: { generation: number; figures: Promise<Figures> } | null = null;
  // Bumped by invalidate(): a refresh started before it is neither reused nor cached.
  let generation = 0;

  /** The current figures: cached for cacheMs, one refresh at a time, never rejecting. */
  function figures(): Promise<Figures> {
    if (cached && performance.now() - cached.at < cacheMs) return Promise.resolve(cached.figures);
    if (!refreshing || refreshing.generation !== generation) {
      const mine = { generation, figures: gather() };
      refreshing = mine;
      mine.figures.then((f) => {
        if (mine.generation === generation) cached = { at: performance.now(), figures: f };
        if (refreshing === mine) refreshing = null;
      });
    }
    return refreshing.figures;
  }

  // ------------------------------------------------------------ the metrics

  new Gauge({
    name: 'starforge_control_up',
    help: '1 when the control database answered the last metrics read in time, else 0.',
    registers,
    async collect() {
      this.set((await figures()).control ? 1 : 0);
    },
  });

  new Gauge({
    name: 'starforge_target_up',
    help: "1 when the environment's target database answered the last metrics read in time, else 0 (environments without a URL have no sample).",
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const f = await figures();
      this.reset();
      for (const [environment, t] of f.targets) this.set({ environment }, t ? 1 : 0);
    },
  });

  new Gauge({
    name: 'starforge_runs',
    help: 'Runs currently in each status, by environment (all statuses, zeros included).',
    labelNames: ['environment', 'status'] as const,
    registers,
    async collect() {
      const c = (await figures()).control;
      this.reset();
      for (const r of c?.runs ?? []) this.set({ environment: r.environment, status: r.status }, Number(r.count));
    },
  });

  new Counter({
    name: 'starforge_run_transitions_total',
    help: "Run status transitions (from 'none' = created), counted in the control database as they commit, whichever replica made them.",
    labelNames: ['environment', 'from', 'to'] as const,
    registers,
    async collect() {
      const c = (await figures()).control;
      this.reset();
      if (!c) return;
      // Every possible transition from 0, so the first failure is an increase (see known-series.ts).
      for (const environment of names) for (const [from, to] of RUN_TRANSITIONS) this.inc({ environment, from, to }, 0);
      for (const t of c.transitions) this.inc({ environment: t.environment, from: t.from_status, to: t.to_status }, Number(t.count));
    },
  });

  new Gauge({
    name: 'starforge_approvals_waiting',
    help: 'Runs that passed preflight and wait for approvals, by environment.',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const c = (await figures()).control;
      this.reset();
      for (const r of c?.runs ?? []) if (r.status === 'awaiting_approval') this.set({ environment: r.environment }, Number(r.count));
    },
  });

  new Gauge({
    name: 'starforge_last_successful_apply_timestamp_seconds',
    help: 'When a run of the environment last reached succeeded (Unix time; kept when that run is later rolled back or restored; no sample before the first).',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const c = (await figures()).control;
      this.reset();
      for (const r of c?.lastSucceeded ?? []) if (r.at) this.set({ environment: r.environment }, r.at.getTime() / 1000);
    },
  });

  new Gauge({
    name: 'starforge_active_run_status_age_seconds',
    help: "Seconds the environment's active run has been in its current status (e.g. stuck in applying).",
    labelNames: ['environment', 'status'] as const,
    registers,
    async collect() {
      const c = (await figures()).control;
      this.reset();
      for (const r of c?.active ?? []) this.set({ environment: r.environment, status: r.status }, Math.max(0, r.age_seconds));
    },
  });

  new Gauge({
    name: 'starforge_scheduled_run_overdue_seconds',
    help: 'Seconds an approved or scheduled run is past its scheduled time without having started (0 when none is due).',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const c = (await figures()).control;
      this.reset();
      if (!c) return;
      for (const environment of names) {
        const due = c.active.find((r) => r.environment === environment && (r.status === 'approved' || r.status === 'scheduled'));
        this.set({ environment }, due ? due.overdue_seconds : 0);
      }
    },
  });

  new Gauge({
    name: 'starforge_pending_migrations',
    help: 'Migrations in the environment\'s directory not yet applied to its target.',
    labelNames: ['environment'] as const,
    registers,
    async collect() {
      const f = await figures();
      this.reset();
      for (const [environment, t] of f.targets) if (t && t.pending !== null) this.set({ environment }, t.pending);
    },
  });

  new Gauge({
    name: 'starforge_maintenance_window_open',
    help: '1 while a maintenance window of the environment is open (no windows configured = always), else 0; freezes are starforge_freeze_active.',
    labelNames: ['environment'] as const,
    registers,
    collect() {
      const now = new Date();
      this.reset();
      for (const env of environments) {
        let open: boolean | null = null;
        try {
          open = windowOpen(env, now);
        } catch (err) {
          // A collect() that throws fails the whole scrape: leave this one sample out instead.
          log.warn({ err, environment: env.name }, 'metrics: could not tell whether the maintenance window is open');
        }
        if (open !== null) this.set({ environment: env.name }, open ? 1 : 0);
      }
    },
  });

  new Gauge({
    name: 'starforge_freeze_active',
    help: '1 while a configured freeze period covers now (nothing is applied), else 0.',
    labelNames: ['environment'] as const,
    registers,
    collect() {
      const now = new Date();
      this.reset();
      for (const env of environments) this.set({ environment: env.name }, env.freezes.some((f) => f.from <= now && now < f.to) ? 1 : 0);
    },
  });

  const etlGauge = (name: string, help: string, pick: (e: EtlGauges) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['environment'] as const,
      registers,
      async collect() {
        const f = await figures();
        this.reset();
        for (const [environment, t] of f.targets) {
          const value = t ? pick(t.etl) : null;
          if (value !== null) this.set({ environment }, value);
        }
      },
    });
  etlGauge('starforge_etl_backlog_snapshots', 'Hero snapshots not processed yet (counting stops at 1,000,000).', (e) => e.backlog);
  etlGauge('starforge_etl_oldest_unprocessed_age_seconds', 'Age of the oldest unprocessed hero snapshot (0 when there is none).', (e) => e.oldestUnprocessedAgeSeconds);
  etlGauge('starforge_etl_errors_last_hour', 'etl_errors rows written in the last hour.', (e) => e.errorsLastHour);
  etlGauge('starforge_etl_paused', '1 while etl_control.paused is set (workers process nothing), else 0.', (e) => (e.paused === null ? null : e.paused ? 1 : 0));

  return {
    /** Forget the cached figures: the next scrape reads the databases again. */
    invalidate(): void {
      cached = null;
      generation += 1;
    },
  };
}

export type StateMetrics = ReturnType<typeof registerStateMetrics>;
