import { exec, maybeOne, transaction } from '../../database/db.js';
import { mergeApplyState } from '../../database/sql/apply.js';
import { insertReport } from '../../database/sql/reports.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import { revokeLease } from '../../database/sql/scheduler.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { conflict, notFound } from '../errors.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { etlRates, judge, type EtlRates, type WatchOutcome } from '../verify/watch.js';
import type { ApplyReport } from './apply-report.js';
import type { ApplyState } from './apply-state.js';
import { runLogger } from './run-log.js';

type StoredRun = RunRow & { apply_state: ApplyState };

export interface WatchEnded {
  status: 'succeeded' | 'degraded';
  watch: WatchOutcome;
}

/**
 * Ends a monitoring run's watch now, on what it has seen so far: the ETL's
 * activity from the watch's start to now against the baseline. Decided in SQL:
 * under the run's row lock the run must still be monitoring (the watcher's own
 * end takes the same lock, so exactly one of them ends it), and the watcher's
 * lease is revoked in the same transaction, so its next renewal finds it gone
 * and it stops without a verdict of its own (services/apply/watch-phase.ts),
 * releasing the run's apply lock.
 */
export async function endWatchEarly(ctx: ServiceContext, runId: string, actor: string, reason: string, cause: { requestId?: string } = {}): Promise<WatchEnded> {
  const run = await maybeOne<StoredRun>(ctx.control, selectRun(runId));
  if (!run) throw notFound(`Run ${runId} does not exist.`);
  if (run.status !== 'monitoring') throw conflict(`Run ${runId} is ${run.status}; only a run in monitoring has a watch to end.`, { currentStatus: run.status });
  const env = ctx.config.environments[run.environment];
  if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
  const state = run.apply_state;
  const window = state.watch?.window ?? { startedAt: run.updated_at.toISOString(), endsAt: new Date().toISOString() };
  const baseline = state.watch?.baseline ?? null;
  const from = new Date(window.startedAt);
  const now = new Date();
  const watchedSeconds = Math.round((now.getTime() - from.getTime()) / 100) / 10;
  let watch: WatchOutcome;
  try {
    const during: EtlRates | null = await ctx.targets.withClient(env, (client) => etlRates(client, from, now));
    if (!during) {
      watch = { watchedSeconds, baseline, during, degraded: false, cutShort: true, observed: true, outages: [], detail: 'No ETL tables on the target: nothing to watch.' };
    } else {
      const verdict = judge(baseline, during, env.verify);
      watch = { watchedSeconds, baseline, during, cutShort: true, observed: true, outages: [], ...verdict };
    }
  } catch (err) {
    // What was seen so far cannot be read: the health is unknown, which the runbook treats as degraded.
    watch = {
      watchedSeconds, baseline, during: null, degraded: true, cutShort: true, observed: false,
      outages: [{ from: now.toISOString(), to: null, error: (err as Error).message.slice(0, 300) }],
      detail: `The ETL could not be observed when the watch was ended early: ${(err as Error).message.slice(0, 300)}`,
    };
  }
  watch.detail = `Watch ended early after ${watchedSeconds} s by ${actor} (${reason}): ${watch.detail}`;
  const status = watch.degraded ? 'degraded' : 'succeeded';
  await transaction(ctx.control, async (client) => {
    const locked = await lockRunForUpdate(client, runId);
    if (locked.status !== 'monitoring') throw conflict(`Run ${runId} is ${locked.status}; its watch has already ended.`, { currentStatus: locked.status });
    const report: ApplyReport = { ...(state.report ?? emptyReport(run, env.name, actor)), watch, outcome: watch.degraded ? 'degraded' : 'succeeded', finishedAt: now.toISOString() };
    if (watch.degraded) report.notes = [...report.notes, `Degraded: ${watch.detail}`];
    await exec(client, insertReport(runId, 'apply', run.digest, report));
    await exec(client, mergeApplyState(runId, { watch: { ...state.watch, window, baseline, verdict: watch.degraded ? 'degraded' : 'healthy', endedAt: now.toISOString(), endedEarly: true } }));
    await exec(client, revokeLease(runId));
    await appendEvent(client, {
      runId, environment: run.environment, type: 'watch.ended_early', actor,
      details: { reason, verdict: watch.degraded ? 'degraded' : 'healthy', watchedSeconds, endsAt: window.endsAt, ...cause },
    });
    const error = watch.degraded ? { code: 'degraded', message: watch.detail } : null;
    await transition(client, locked, status, { actor, details: error ? { error, endedEarly: true } : { report: 'apply', endedEarly: true }, patch: { error }, expect: ['monitoring'] });
  });
  const runLog = runLogger(ctx.control, runId);
  await runLog.write('monitor', watch.degraded ? 'warn' : 'info', watch.detail);
  await runLog.flush();
  return { status, watch };
}

function emptyReport(run: RunRow, environment: string, actor: string): ApplyReport {
  return {
    runId: run.id, environment, outcome: 'succeeded', actor, startedAt: run.updated_at.toISOString(), finishedAt: '',
    backup: null, workers: null, migrations: [], lockRetries: 0, failure: null, verification: [], smoke: null, watch: null,
    notes: ['The apply report before the watch was not stored (a run from an older version); see the run log.'],
  };
}
