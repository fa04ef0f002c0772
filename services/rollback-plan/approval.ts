import type pg from 'pg';
import { exec, one } from '../../database/db.js';
import type { RollbackRow } from '../../database/sql/apply.js';
import { holdRollbackRequest, recordApprovedPlan } from '../../database/sql/rollback-plan.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { conflict, unprocessable } from '../errors.js';
import type { LockedRun } from '../runs/transition.js';
import { planRollback, rollbackWindow } from './plan.js';
import type { RollbackPlan } from './types.js';

/** rollback_requests with the columns the plan added. */
export type PlannedRollbackRow = RollbackRow & {
  plan: RollbackPlan | null;
  plan_digest: string | null;
  approved_plan: RollbackPlan | null;
  approved_plan_digest: string | null;
  override_window: boolean;
  scheduled_for: Date | null;
};

/**
 * The approver names the digest of the plan they looked at; it must be the
 * plan as it is now (re-read from the target), or the approval is refused
 * with the new plan and its digest to look at instead.
 */
export async function checkApprovedPlan(ctx: ServiceContext, runId: string, mode: 'down' | 'restore', digest: string | undefined): Promise<RollbackPlan> {
  if (!digest) {
    throw unprocessable(`"planDigest" is required to approve: the digest of the plan you approve (GET /v1/runs/${runId}/rollback/plan?mode=${mode}).`, {
      errors: [{ path: 'body/planDigest', message: 'is required with decision "approve"' }],
    });
  }
  const plan = await planRollback(ctx, runId, mode);
  if (plan.digest !== digest) {
    throw conflict(`The ${mode} plan changed since you looked at it (you approved ${digest.slice(0, 12)}…, it is now ${plan.digest.slice(0, 12)}…); review the plan below and approve its digest.`, {
      code: 'plan-changed', planDigest: plan.digest, plan,
    });
  }
  if (plan.blockers.length) throw conflict(`Rollback refused: ${plan.blockers.join('; ')}.`, { code: 'plan-blocked', planDigest: plan.digest });
  return plan;
}

export type ApprovalGate = { start: true } | { start: false; row: PlannedRollbackRow };

/**
 * In the approving transaction: records the approved plan, then lets the
 * rollback start now (a window is open, the environment has none, or the
 * requester asked for an override and this different sre co-signs it), or
 * holds it, approved, for the next window.
 */
export async function gateRollbackApproval(
  client: pg.ClientBase,
  ctx: { env: EnvironmentConfig; run: LockedRun; request: PlannedRollbackRow; approver: string; comment: string; plan: RollbackPlan; now: Date },
): Promise<ApprovalGate> {
  const { env, run, request, approver, comment, plan, now } = ctx;
  await exec(client, recordApprovedPlan(request.id, plan, plan.digest));
  const window = rollbackWindow(env, now);
  if (window.open) return { start: true };
  const event = { runId: run.id, environment: run.environment, actor: approver };
  if (request.override_window) {
    await appendEvent(client, {
      ...event, type: 'rollback.window_overridden',
      details: { requestId: request.id, mode: request.mode, requestedBy: request.requested_by, approvedBy: approver, reason: request.reason, nextWindow: window.next },
    });
    return { start: true };
  }
  if (!window.next) {
    throw conflict(`${env.name} has no maintenance window open now and none within reach; a ${request.mode} outside the windows needs an override: ask again with "overrideWindow": true (an sre other than the requester co-signs it by approving).`, { code: 'outside-window' });
  }
  const held = await one<PlannedRollbackRow>(client, holdRollbackRequest(request.id, approver, comment, new Date(window.next.start)));
  await appendEvent(client, { ...event, type: 'rollback.approved', details: { requestId: request.id, mode: request.mode, comment, planDigest: plan.digest } });
  await appendEvent(client, {
    ...event, type: 'rollback.scheduled',
    details: { requestId: request.id, mode: request.mode, scheduledFor: window.next.start, window: window.next, reason: `${env.name} has no maintenance window open now and the request asked for no override` },
  });
  return { start: false, row: held };
}
