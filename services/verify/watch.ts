import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { one } from '../../database/db.js';
import { etlActivity, tableExists } from '../../database/sql/verify.js';

export interface EtlRates {
  from: string;
  to: string;
  processed: number;
  failed: number;
  backlog: number;
  processedPerMinute: number;
  failureRate: number;
}

export interface WatchOutcome {
  watchedSeconds: number;
  baseline: EtlRates | null;
  during: EtlRates | null;
  degraded: boolean;
  cutShort: boolean;
  detail: string;
}

// The baseline looks back at least this far, so a quiet minute is not a baseline.
const BASELINE_MINUTES = 15;
// A handful of failures is noise, whatever the rate.
const MIN_FAILURES = 3;
const MIN_FAILURE_RATE = 0.02;

export async function etlRates(client: pg.ClientBase, from: Date, to: Date): Promise<EtlRates | null> {
  if (!(await one<{ exists: boolean }>(client, tableExists('public.etl_errors'))).exists) return null;
  const a = await one<{ processed: number; failed: number; backlog: number }>(client, etlActivity(from, to));
  const minutes = Math.max((to.getTime() - from.getTime()) / 60_000, 1 / 60);
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

/** Whether the watch shows a regression beyond `factor`, and why. */
export function judge(baseline: EtlRates | null, during: EtlRates, factor: number): { degraded: boolean; detail: string } {
  const failLimit = Math.max(baseline?.failureRate ?? 0, MIN_FAILURE_RATE) * factor;
  if (during.failed >= MIN_FAILURES && during.failureRate > failLimit) {
    return { degraded: true, detail: `ETL failure rate ${during.failureRate} (${during.failed} failures) after the apply exceeds ${factor}x the baseline (${baseline?.failureRate ?? 0}).` };
  }
  if (baseline && baseline.processedPerMinute > 0 && during.backlog > 0 && during.processedPerMinute < baseline.processedPerMinute / factor) {
    return { degraded: true, detail: `ETL processing fell to ${during.processedPerMinute}/min with a backlog of ${during.backlog}, below 1/${factor} of the baseline ${baseline.processedPerMinute}/min.` };
  }
  return { degraded: false, detail: `ETL healthy after the apply: ${during.processed} processed, ${during.failed} failed (rate ${during.failureRate}).` };
}

/**
 * Watches the ETL for `watchMinutes` after workers resume (runbook: 30-60),
 * then compares with the baseline. `signal` cuts the watch short (shutdown):
 * the judgement then uses what was seen so far.
 */
export async function watchEtl(
  connect: <T>(fn: (client: pg.ClientBase) => Promise<T>) => Promise<T>,
  baseline: EtlRates | null,
  watchMinutes: number,
  factor: number,
  signal: AbortSignal,
): Promise<WatchOutcome> {
  const started = new Date();
  let cutShort = false;
  if (watchMinutes > 0) {
    try {
      await sleep(watchMinutes * 60_000, undefined, { signal });
    } catch {
      cutShort = true;
    }
  }
  const ended = new Date();
  const watchedSeconds = Math.round((ended.getTime() - started.getTime()) / 100) / 10;
  const during = await connect((client) => etlRates(client, started, ended));
  if (!during) return { watchedSeconds, baseline, during, degraded: false, cutShort, detail: 'No ETL tables on the target: nothing to watch.' };
  const verdict = judge(baseline, during, factor);
  return { watchedSeconds, baseline, during, cutShort, ...verdict, detail: `${verdict.detail}${cutShort ? ' (watch cut short by a shutdown)' : ''}` };
}
