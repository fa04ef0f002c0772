import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { exec, one } from '../../database/db.js';
import { ping } from '../../database/sql/target.js';
import { ServiceError } from '../errors.js';
import { etlActivity, tableExists } from '../../database/sql/verify.js';

export interface EtlRates {
  from: string;
  to: string;
  processed: number;
  /** Processing errors: what a migration can cause, and what degradation is judged on. */
  failed: number;
  /** Bad client uploads (etl_errors.error_type 'invalid_snapshot'): the clients' fault, counted apart (absent in old reports). */
  invalid?: number;
  backlog: number;
  processedPerMinute: number;
  failureRate: number;
}

export interface WatchOutage {
  from: string;
  /** null: the target was still unreachable when the watch gave up. */
  to: string | null;
  error: string;
}

export interface WatchOutcome {
  watchedSeconds: number;
  baseline: EtlRates | null;
  during: EtlRates | null;
  degraded: boolean;
  /** Kept for old reports: the watch no longer ends early (a shutdown hands it to another replica). */
  cutShort: boolean;
  /** Whether the ETL could be read for the watch window at all. */
  observed: boolean;
  /** Times the target could not be reached during the watch or while its verdict was retried. */
  outages: WatchOutage[];
  detail: string;
}

/** The watch's fixed window: stored with the run so any replica can end it on time. */
export interface WatchWindow {
  startedAt: string;
  endsAt: string;
}

export interface WatchOptions {
  /** Stops the watch without a verdict (shutdown, lost lease): the caller hands the run on. */
  signal: AbortSignal;
  /** How long after the window's end the verdict is retried while the target is unreachable. */
  retryMs: number;
  /** How often the target is probed during the window (outages are recorded). */
  probeMs?: number;
}

export type Connect = <T>(fn: (client: pg.ClientBase) => Promise<T>) => Promise<T>;

// The baseline looks back at least this far, so a quiet minute is not a baseline.
const BASELINE_MINUTES = 15;
const MIN_FAILURE_RATE = 0.02;

export async function etlRates(client: pg.ClientBase, from: Date, to: Date): Promise<EtlRates | null> {
  // Both of the ETL's tables the rates read: a schema with only one of them has no ETL to watch.
  for (const table of ['public.etl_errors', 'public.hero_snapshots']) {
    if (!(await one<{ exists: boolean }>(client, tableExists(table))).exists) return null;
  }
  const a = await one<{ processed: number; failed: number; invalid: number; backlog: number }>(client, etlActivity(from, to));
  const minutes = Math.max((to.getTime() - from.getTime()) / 60_000, 1 / 60);
  // Invalid uploads are neither processed nor processing errors: they stay out of the rate.
  const attempts = a.processed + a.failed;
  return {
    from: from.toISOString(), to: to.toISOString(), ...a,
    processedPerMinute: Math.round((a.processed / minutes) * 100) / 100,
    failureRate: attempts ? Math.round((a.failed / attempts) * 1000) / 1000 : 0,
  };
}

/** ETL activity before the apply started: what the watch compares against. */
export function baselineWindow(applyStartedAt: Date, watchMinutes: number): { from: Date; to: Date } {
  const minutes = Math.max(BASELINE_MINUTES, watchMinutes);
  return { from: new Date(applyStartedAt.getTime() - minutes * 60_000), to: applyStartedAt };
}

export interface DegradeRule {
  degradeFactor: number;
  /** Fewer new processing errors than this is noise, whatever the ratio (verify.degradeMinFailures). */
  degradeMinFailures: number;
}

/**
 * Whether the watch shows a regression: degraded needs both at least
 * `degradeMinFailures` processing errors and a failure rate beyond
 * `degradeFactor` times the baseline's (or a throughput collapse with a
 * backlog). Invalid client uploads never count: they say nothing about the
 * migration.
 */
export function judge(baseline: EtlRates | null, during: EtlRates, rule: DegradeRule): { degraded: boolean; detail: string } {
  const factor = rule.degradeFactor;
  const failLimit = Math.max(baseline?.failureRate ?? 0, MIN_FAILURE_RATE) * factor;
  const invalid = during.invalid ? ` ${during.invalid} invalid client upload(s) were rejected and are not counted as failures.` : '';
  if (during.failed >= rule.degradeMinFailures && during.failureRate > failLimit) {
    return { degraded: true, detail: `ETL failure rate ${during.failureRate} (${during.failed} processing errors, at least ${rule.degradeMinFailures} needed) after the apply exceeds ${factor}x the baseline (${baseline?.failureRate ?? 0}).${invalid}` };
  }
  if (baseline && baseline.processedPerMinute > 0 && during.backlog > 0 && during.processedPerMinute < baseline.processedPerMinute / factor) {
    return { degraded: true, detail: `ETL processing fell to ${during.processedPerMinute}/min with a backlog of ${during.backlog}, below 1/${factor} of the baseline ${baseline.processedPerMinute}/min.${invalid}` };
  }
  return { degraded: false, detail: `ETL healthy after the apply: ${during.processed} processed, ${during.failed} processing errors (rate ${during.failureRate}).${invalid}` };
}

export function watchWindow(from: Date, watchMinutes: number): WatchWindow {
  return { startedAt: from.toISOString(), endsAt: new Date(from.getTime() + watchMinutes * 60_000).toISOString() };
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 300);

/** The target being away (worth retrying), rather than a statement it refused. */
const isOutage = (err: unknown) => !(err instanceof ServiceError) || err.statusCode === 503;

/** Sleeps until `at` (or `ms`), false when the signal fired first. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (ms <= 0) return !signal.aborted;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/**
 * Watches the ETL over `window` (runbook: 30-60 minutes after workers
 * resume), then compares with the baseline. The window is fixed in time, so
 * a replica taking over a dead one's watch ends it at the same moment, and the
 * verdict reads the window's activity from the target (rows carry their
 * times), so a target outage during the watch loses nothing: the verdict is
 * retried until `retryMs` past the end. A target still unreachable then gives
 * a degraded run whose report says the ETL could not be observed.
 * Resolves null when `signal` stops the watch (the run stays monitoring).
 */
export async function watchEtl(connect: Connect, baseline: EtlRates | null, window: WatchWindow, rule: DegradeRule, opts: WatchOptions): Promise<WatchOutcome | null> {
  const startedAt = new Date(window.startedAt);
  const endsAt = new Date(window.endsAt);
  const outages: WatchOutage[] = [];
  const down = (err: unknown) => {
    const open = outages.at(-1);
    if (!open || open.to !== null) outages.push({ from: new Date().toISOString(), to: null, error: errorText(err) });
  };
  const up = () => {
    const open = outages.at(-1);
    if (open && open.to === null) open.to = new Date().toISOString();
  };
  const windowMs = endsAt.getTime() - startedAt.getTime();
  const probeMs = opts.probeMs ?? Math.min(30_000, Math.max(1000, windowMs / 6));
  while (Date.now() < endsAt.getTime()) {
    if (!(await pause(Math.min(probeMs, endsAt.getTime() - Date.now()), opts.signal))) return null;
    if (Date.now() >= endsAt.getTime()) break;
    try {
      await connect((client) => exec(client, ping()));
      up();
    } catch (err) {
      down(err);
    }
  }
  const giveUpAt = endsAt.getTime() + opts.retryMs;
  const retryEveryMs = Math.min(5000, Math.max(200, opts.retryMs / 10));
  let during: EtlRates | null = null;
  let observed = false;
  for (;;) {
    try {
      during = await connect((client) => etlRates(client, startedAt, endsAt));
      observed = true;
      up();
      break;
    } catch (err) {
      if (!isOutage(err)) {
        return { watchedSeconds: Math.round(windowMs / 100) / 10, baseline, during: null, cutShort: false, observed: false, outages, degraded: true, detail: `The ETL could not be observed after the apply: ${errorText(err)}` };
      }
      down(err);
      if (Date.now() >= giveUpAt) break;
      if (!(await pause(Math.min(retryEveryMs, giveUpAt - Date.now()), opts.signal))) return null;
    }
  }
  const watchedSeconds = Math.round(windowMs / 100) / 10;
  const outageNote = outages.length
    ? ` The target was unreachable ${outages.length} time(s) during the watch (${outages.map((o) => `${o.from} to ${o.to ?? 'the end'}: ${o.error}`).join('; ')}).`
    : '';
  const base = { watchedSeconds, baseline, during, cutShort: false, observed, outages };
  if (!observed) {
    return { ...base, degraded: true, detail: `The ETL could not be observed after the apply: the target was still unreachable ${Math.round(opts.retryMs / 1000)} s after the watch ended, so its health is unknown.${outageNote}` };
  }
  if (!during) return { ...base, degraded: false, detail: `No ETL tables on the target: nothing to watch.${outageNote}` };
  const verdict = judge(baseline, during, rule);
  return { ...base, ...verdict, detail: `${verdict.detail}${outageNote}` };
}
