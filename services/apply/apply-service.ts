import { maybeOne, rows, transaction } from '../../database/db.js';
import { openRollbackRequest } from '../../database/sql/apply.js';
import { invalidIndexes } from '../../database/sql/apply-target.js';
import { latestReport } from '../../database/sql/reports.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { appendEvent } from '../audit.js';
import { createBackground } from '../background.js';
import type { ServiceContext } from '../context.js';
import { conflict, unprocessable } from '../errors.js';
import type { Principal } from '../principal.js';
import type { RunStatus } from '../runs/state-machine.js';
import { createLease } from '../scheduler/lease.js';
import { armConfirmed, decideConfirmation, recordConfirmation, type ConfirmOutcome } from '../policy/confirm.js';
import { requestOverride } from '../policy/override-request.js';
import { windowForApply } from '../scheduler/policy.js';
import type { ApplyReport } from './apply-report.js';
import { checkDrift } from './drift.js';
import { closeInterrupted } from './close-run.js';
import { terminateRunSessions } from './orphans.js';
import { createPipeline } from './pipeline.js';
import { reconcileInFlight } from './reconcile.js';
import { createStarter } from './start.js';
import { loadStoredRun, type StoredRun } from './stored-run.js';
import { endWatchEarly } from './watch-end.js';

export type { ApplyReport } from './apply-report.js';
export type { Reconciliation } from './reconcile-types.js';
export { driftOf } from './drift.js';

export interface ApplyInput {
  confirm: string;
  overrideWindow?: boolean;
  reason?: string;
}

const APPLYABLE: RunStatus[] = ['approved', 'scheduled'];

/**
 * The runbook's apply (its pipeline is services/apply/pipeline.ts) and the
 * doors to it: an operator's apply or re-apply, the scheduler's start.
 * Whoever holds the run's apply lock and lease runs it; a process that dies
 * mid-apply leaves both to lapse, and reconciliation (services/apply/reconcile.ts)
 * takes the run on. A re-apply of an interrupted run goes through the same
 * door (start) and pipeline, running only what had not landed.
 */
export function createApplyService(ctx: ServiceContext) {
  const { control, config, log } = ctx;
  const background = createBackground(log);
  // Aborted on close: a post-apply watch is handed to another replica instead of holding shutdown for watchMinutes.
  const shutdown = new AbortController();
  const lease = createLease(control, log, config.applyLeaseSeconds * 1000);

  const loadRun = (runId: string) => loadStoredRun(control, runId);
  const pipeline = createPipeline(ctx, { owner: lease.owner, shutdown: shutdown.signal });

  function checkConfirm(run: RunRow, input: ApplyInput): void {
    if (input.confirm !== run.environment) {
      throw unprocessable(`"confirm" must be the environment name ("${run.environment}") to apply this run.`, { errors: [{ path: 'body/confirm', message: 'must equal the environment name' }] });
    }
  }

  function checkFreeze(env: EnvironmentConfig, now: Date): void {
    const freeze = env.freezes.find((f) => f.from <= now && now < f.to);
    if (freeze) throw conflict(`${env.name} is frozen until ${freeze.to.toISOString()} (${freeze.reason}); a freeze always wins.`);
  }

  /**
   * The window rules of a re-apply: inside a window (or none configured). A
   * re-apply outside the windows would need the co-signed override of an apply
   * (services/policy), which is bound to a fresh apply, so it waits for a window.
   */
  function checkReapplyWindow(env: EnvironmentConfig, now: Date) {
    checkFreeze(env, now);
    const slot = windowForApply(env, now);
    if (!slot.open) {
      const next = slot.next ? ` (the next one opens ${slot.next.start.toISOString()})` : '';
      throw conflict(`${env.name} has no maintenance window open now${next}; re-apply inside a window, or close / roll back the run.`, { code: 'outside-window', nextWindow: slot.next ? { start: slot.next.start.toISOString(), end: slot.next.end.toISOString() } : null });
    }
    return slot;
  }

  async function refuseDrift(run: RunRow, env: EnvironmentConfig, actor: string): Promise<Awaited<ReturnType<typeof checkDrift>>> {
    const drift = await checkDrift(ctx, run, env);
    if (drift.reason) {
      await transaction(control, (client) => appendEvent(client, {
        runId: run.id, environment: run.environment, type: 'apply.refused', actor, details: { code: 'drift', reason: drift.reason },
      }));
      throw conflict(`Refused: ${drift.reason}. Nothing was changed; re-run preflight and get the new content approved.`, { code: 'drift' });
    }
    return drift;
  }

  async function startFor(run: RunRow, principal: Principal, input: ApplyInput, slot: ReturnType<typeof windowForApply>, expect: RunStatus[], type: string, extra: Record<string, unknown>) {
    const started = await start(run.id, principal.subject, {
      expect,
      type,
      deadline: slot.deadline,
      details: {
        reason: input.reason ?? null, overrideWindow: !slot.open, digest: run.digest, ...extra,
        window: slot.window ? { start: slot.window.start.toISOString(), end: slot.window.end.toISOString() } : null,
      },
      gate: async (client, locked) => {
        if (!slot.open) {
          await appendEvent(client, { runId: run.id, environment: locked.environment, type: 'apply.window_overridden', actor: principal.subject, details: { reason: input.reason ?? null, nextWindow: slot.next ? { start: slot.next.start.toISOString(), end: slot.next.end.toISOString() } : null } });
        }
        return { deadline: slot.deadline };
      },
    });
    if (started.outcome !== 'started') throw conflict(`Run ${run.id} is being started by another process (the scheduler or another replica); check its status.`);
  }

  async function request(runId: string, principal: Principal, input: ApplyInput, now = new Date()): Promise<ConfirmOutcome> {
    const run = await loadRun(runId);
    const env = config.environments[run.environment];
    if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
    checkConfirm(run, input);
    if (!APPLYABLE.includes(run.status as RunStatus)) {
      throw conflict(`Run ${runId} is ${run.status}; only approved or scheduled runs can be applied.`, { currentStatus: run.status });
    }
    checkFreeze(env, now);
    // The operator's confirmation: now inside a window, else armed for the next one, or a co-signed override (services/policy).
    const confirmation = decideConfirmation(env, input, now);
    await refuseDrift(run, env, principal.subject);
    if (confirmation.kind === 'arm') return armConfirmed(ctx, runId, principal, env, confirmation.next, now);
    if (confirmation.kind === 'override') return requestOverride(ctx, runId, principal, env, confirmation.reason, confirmation.next);
    const started = await start(runId, principal.subject, {
      expect: APPLYABLE,
      type: 'apply.started',
      deadline: confirmation.deadline,
      details: {
        reason: input.reason ?? null, overrideWindow: false, digest: run.digest,
        window: confirmation.window ? { start: confirmation.window.start.toISOString(), end: confirmation.window.end.toISOString() } : null,
      },
      gate: async (client, locked) => {
        await recordConfirmation(client, locked, principal.subject, { outcome: 'applying' });
        return { deadline: confirmation.deadline };
      },
    });
    if (started.outcome !== 'started') throw conflict(`Run ${runId} is being started by another process (the scheduler or another replica); check its status.`);
    return { outcome: 'applying' };
  }

  /**
   * interrupted -> applying: an operator re-applies what of the run had not
   * landed, after a fresh drift check (the remaining files must be the
   * approved ones, the landed ones exactly the run's first ones), through the
   * same start and pipeline as any apply. Refused while anything of the dead
   * attempt still runs on the target or an INVALID index it left is in the way.
   */
  async function reapply(runId: string, principal: Principal, input: ApplyInput & { reason: string }, now = new Date()): Promise<void> {
    const run = await loadRun(runId);
    const env = config.environments[run.environment];
    if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
    checkConfirm(run, input);
    if (run.status !== 'interrupted') {
      throw conflict(`Run ${runId} is ${run.status}; only an interrupted run can be re-applied.`, { currentStatus: run.status });
    }
    if (await maybeOne(control, openRollbackRequest(runId))) throw conflict(`Run ${runId} has an open rollback or restore request; decide it before re-applying.`);
    const slot = checkReapplyWindow(env, now);
    // Anything of the dead attempt still running there (a process cut off from the control database) is stopped first.
    const leftovers = await terminateRunSessions(ctx, env, runId);
    const invalid = await ctx.targets.withClient(env, (client) => rows<{ index: string; table: string }>(client, invalidIndexes()));
    if (invalid.length) {
      throw conflict(`INVALID index(es) ${invalid.map((i) => `${i.index} on ${i.table}`).join(', ')} remain (a CONCURRENTLY build the interrupted attempt did not finish); drop them (DROP INDEX CONCURRENTLY) before re-applying.`, { code: 'invalid-index' });
    }
    const drift = await refuseDrift(run, env, principal.subject);
    await startFor(run, principal, input, slot, ['interrupted'], 'apply.reapplied', { reapply: true, landed: drift.landed, remaining: drift.remaining.map((m) => m.name), terminatedSessions: leftovers.length });
  }

  async function report(runId: string): Promise<{ report: ApplyReport; createdAt: string } | null> {
    const row = await maybeOne<{ body: ApplyReport; created_at: Date }>(control, latestReport(runId, 'apply'));
    if (row) return { report: row.body, createdAt: row.created_at.toISOString() };
    // Monitoring: the report so far (verification passed) is served at once; its watch section fills in when the watch ends.
    const run = await maybeOne<StoredRun>(control, selectRun(runId));
    const sofar = run?.status === 'monitoring' ? run.apply_state.report : undefined;
    if (!run || !sofar) return null;
    const endsAt = run.apply_state.watch?.window.endsAt;
    return { report: { ...sofar, watch: null, notes: [...sofar.notes, `The post-apply watch is running${endsAt ? ` until ${endsAt}` : ''}; this report's watch section fills in when it ends.`] }, createdAt: run.updated_at.toISOString() };
  }

  /**
   * Reconciliation of in-flight runs whose owner is gone (services/apply/reconcile.ts):
   * at start-up every one whose apply lock is free, in the periodic sweep only
   * those whose lease lapsed. Applying/verifying runs become interrupted; a
   * monitoring run's watch is carried on here until it ends.
   */
  async function reconcile(opts: { expiredLeasesOnly?: boolean } = {}): Promise<string[]> {
    return reconcileInFlight(ctx, { lease, background, stop: shutdown.signal }, opts);
  }

  // Shared by request(), reapply() and the scheduler: lock, move to applying under a lease, run the pipeline.
  const start = createStarter({ control, log, background, lease, pipeline });

  async function close(): Promise<void> {
    shutdown.abort();
    await background.close();
  }

  return {
    request, reapply, start, report, reconcile, lease, idle: background.idle, close,
    /** Ends a monitoring run's watch now (services/apply/watch-end.ts). */
    endWatch: async (runId: string, principal: Principal, reason: string) => endWatchEarly(ctx, runId, principal.subject, reason),
    /** interrupted -> failed when nothing of the run landed (services/apply/close-run.ts). */
    closeInterrupted: (runId: string, principal: Principal, reason: string) => closeInterrupted(ctx, runId, principal, reason),
  };
}

export type ApplyService = ReturnType<typeof createApplyService>;
