import type pg from 'pg';
import { exec, maybeOne, one, rows, transaction } from '../../database/db.js';
import { claimDueRollback, dueRollbackRequests, reopenRollbackRequest, rescheduleRollback, startHeldRollback } from '../../database/sql/rollback-plan.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { lockRunForUpdate, transition, type LockedRun } from '../runs/transition.js';
import type { PlannedRollbackRow } from './approval.js';
import { planRollback, rollbackWindow } from './plan.js';

const DUE_BATCH = 20;
const ACTOR = 'scheduler';

/**
 * At a scheduler tick: approved rollbacks held for a window whose time has
 * come. Each is claimed in SQL (the run's row lock, then the request's with
 * SKIP LOCKED), so one replica starts it. It starts only if the plan is still
 * the one approved; a changed plan sends it back for approval, and a window
 * that closed meanwhile moves it to the next one. Returns the requests moved
 * to running, for the caller to execute.
 */
export interface ClaimHooks<L extends { release(): Promise<void> }> {
  /** The run's apply lock, taken before the status change (null: another process works on the run). */
  lockRun(runId: string): Promise<L | null>;
  /** In the starting transaction, after the transition: the rollback's state and lease. */
  onStart(client: pg.PoolClient, run: LockedRun, request: PlannedRollbackRow): Promise<void>;
}

export async function claimDueRollbacks<L extends { release(): Promise<void> }>(ctx: ServiceContext, now: Date, hooks: ClaimHooks<L>): Promise<Array<{ row: PlannedRollbackRow; lock: L }>> {
  const due = await rows<{ id: string; run_id: string; mode: 'down' | 'restore' }>(ctx.control, dueRollbackRequests(now, DUE_BATCH));
  const started: Array<{ row: PlannedRollbackRow; lock: L }> = [];
  for (const d of due) {
    const lock = await hooks.lockRun(d.run_id).catch((err) => {
      ctx.log.error({ err, runId: d.run_id }, 'could not lock a scheduled rollback\'s run; retrying at the next tick');
      return null;
    });
    if (!lock) continue;
    let handedOff = false;
    try {
      const plan = await planRollback(ctx, d.run_id, d.mode, now);
      const row = await transaction(ctx.control, async (client) => {
        const run = await lockRunForUpdate(client, d.run_id);
        const request = await maybeOne<PlannedRollbackRow>(client, claimDueRollback(d.id, now));
        const env = ctx.config.environments[run.environment];
        if (!request || !env) return null;
        const event = { runId: run.id, environment: run.environment, actor: ACTOR };
        const window = rollbackWindow(env, now);
        if (!window.open && !request.override_window) {
          if (window.next) {
            await exec(client, rescheduleRollback(request.id, new Date(window.next.start)));
            await appendEvent(client, { ...event, type: 'rollback.rescheduled', details: { requestId: request.id, from: request.scheduled_for?.toISOString() ?? null, to: window.next.start, reason: 'no maintenance window is open' } });
          }
          return null;
        }
        if (plan.digest !== request.approved_plan_digest) {
          await one(client, reopenRollbackRequest(request.id));
          await appendEvent(client, {
            ...event, type: 'rollback.plan_changed',
            details: { requestId: request.id, approvedDigest: request.approved_plan_digest, digest: plan.digest, approvedBy: request.decided_by, reason: 'the plan changed between approval and its window; an sre must approve the new plan' },
          });
          return null;
        }
        const running = await one<PlannedRollbackRow>(client, startHeldRollback(request.id));
        await transition(client, run, request.mode === 'down' ? 'rolling_back' : 'restoring', {
          actor: ACTOR,
          details: { requestId: request.id, requestedBy: request.requested_by, approvedBy: request.decided_by, reason: request.reason, scheduledFor: request.scheduled_for?.toISOString() ?? null, planDigest: plan.digest },
        });
        await hooks.onStart(client, run, running);
        return running;
      });
      if (row) {
        started.push({ row, lock });
        handedOff = true;
      }
    } catch (err) {
      ctx.log.error({ err, runId: d.run_id, requestId: d.id }, 'could not start a scheduled rollback; retrying at the next tick');
    } finally {
      if (!handedOff) await lock.release();
    }
  }
  return started;
}
