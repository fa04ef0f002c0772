import { exec, maybeOne, transaction } from '../../database/db.js';
import { mergeApplyState } from '../../database/sql/apply.js';
import { selectRunStatus, type RunRow } from '../../database/sql/runs.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { watchEtl } from '../verify/watch.js';
import { finishApply, RunMovedOn, type ApplyReport } from './apply-report.js';
import type { ApplyState } from './apply-state.js';
import { runApplicationName } from '../child-processes.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { etlPresence, WATCHED_TABLES } from '../etl/presence.js';
import { runLogger } from './run-log.js';
import { resumeWorkers } from './workers.js';

const RUNBOOK_ON_DEGRADED =
  'Runbook decision flow: if the migration has a safe down, ask for a rollback (mode "down"); if not, restore the backup (mode "restore").';

export type WatchPhaseResult = 'finished' | 'handed-off';

/**
 * Why the run needs no post-apply watch, or null when it has one: a target
 * without the ETL tables the watch reads (after the run's own migrations) has
 * nothing to watch, so the run ends succeeded right after verification
 * instead of sitting in monitoring for watchMinutes. A target that cannot be
 * read now is watched as usual (the watch records outages).
 */
export async function nothingToWatch(ctx: ServiceContext, env: EnvironmentConfig): Promise<string | null> {
  const presence = await ctx.targets.withClient(env, etlPresence).catch(() => null);
  if (!presence || presence.watch) return null;
  return `No post-apply watch: the target has no StarForge ETL (${WATCHED_TABLES.filter((t) => !presence.present.includes(t)).join(', ')} missing), so there was nothing to watch; the run succeeded once verification passed.`;
}

/**
 * The post-apply watch of a run in `monitoring`, from its stored window and
 * baseline to its end status: the same code for the process that applied the
 * run and for a replica taking over after that process died. `stop` (a
 * shutdown, a lost lease) leaves the run monitoring for another replica.
 */
export async function completeWatch(ctx: ServiceContext, run: RunRow & { apply_state: ApplyState }, actor: string, stop: AbortSignal): Promise<WatchPhaseResult> {
  const env = ctx.config.environments[run.environment]!;
  const state = run.apply_state;
  const runLog = runLogger(ctx.control, run.id);
  const report: ApplyReport = state.report ?? {
    runId: run.id, environment: env.name, outcome: 'succeeded', actor, startedAt: run.updated_at.toISOString(), finishedAt: '',
    backup: null, workers: null, migrations: [], lockRetries: 0, failure: null, verification: [], smoke: null, watch: null,
    notes: ['The apply report before the watch was not stored (a run from an older version); see the run log.'],
  };
  const window = state.watch?.window ?? { startedAt: run.updated_at.toISOString(), endsAt: new Date(run.updated_at.getTime() + env.verify.watchMinutes * 60_000).toISOString() };
  // Verification passed before the run moved to monitoring; the process may have died before resuming workers.
  if (state.workersPaused && state.workers) {
    try {
      await resumeWorkers(state.workers, {
        environment: env, targetUrl: ctx.targets.url(env), runId: run.id, actor, reason: 'apply succeeded', log: runLog.phase('workers'),
        applicationName: runApplicationName(run.id, 'resume'), adopt: state.pauses,
      });
      await transaction(ctx.control, async (client) => {
        await exec(client, mergeApplyState(run.id, { workersPaused: false }));
        await appendEvent(client, { runId: run.id, environment: env.name, type: 'workers.resumed', actor, details: { method: state.workers!.method, reason: 'apply succeeded (resumed by the replica that took over the watch)' } });
      });
      if (report.workers) report.workers.resumed = true;
    } catch (err) {
      report.notes.push(`Resuming workers failed: ${(err as Error).message}`);
    }
  }
  const watch = await watchEtl((fn) => ctx.targets.withClient(env, fn), state.watch?.baseline ?? null, window, env.verify, {
    signal: stop, retryMs: env.verify.watchRetryMinutes * 60_000,
  });
  if (!watch) {
    // Stopped because someone ended the watch early (the lease was revoked with the run's status change): nothing to hand off.
    if (await endedElsewhere(ctx, run.id)) return 'finished';
    const why = stop.reason instanceof Error ? stop.reason.message : 'this process is stopping';
    await transaction(ctx.control, (client) => appendEvent(client, { runId: run.id, environment: env.name, type: 'watch.handed_off', actor, details: { endsAt: window.endsAt, reason: why } }));
    await runLog.write('monitor', 'info', `watch handed off (${why}); any replica ends it at ${window.endsAt}`);
    await runLog.flush();
    return 'handed-off';
  }
  report.watch = watch;
  report.outcome = watch.degraded ? 'degraded' : 'succeeded';
  report.finishedAt = new Date().toISOString();
  const watchState = { watch: { ...state.watch, window, baseline: state.watch?.baseline ?? null, verdict: watch.degraded ? 'degraded' : 'healthy', endedAt: report.finishedAt, endedEarly: false } };
  try {
    if (watch.degraded) {
      report.notes.push(`Degraded: ${watch.detail} ${RUNBOOK_ON_DEGRADED}`);
      await finishApply(ctx.control, run.id, run.digest, report, 'degraded', { code: 'degraded', message: watch.detail }, ['monitoring'], watchState);
    } else {
      await finishApply(ctx.control, run.id, run.digest, report, 'succeeded', null, ['monitoring'], watchState);
    }
  } catch (err) {
    // Ended early by someone else between the watch's end and this verdict: theirs stands.
    if (err instanceof RunMovedOn) return 'finished';
    throw err;
  }
  await runLog.write('monitor', watch.degraded ? 'warn' : 'info', watch.detail);
  await runLog.flush();
  return 'finished';
}

async function endedElsewhere(ctx: ServiceContext, runId: string): Promise<boolean> {
  const row = await maybeOne<{ status: string }>(ctx.control, selectRunStatus(runId));
  return row != null && row.status !== 'monitoring';
}
