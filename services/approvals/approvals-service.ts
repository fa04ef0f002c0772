import { exec, rows, transaction } from '../../database/db.js';
import { isPgError, UNIQUE_VIOLATION } from '../../database/pg-errors.js';
import { approvalsForDigest, insertApproval } from '../../database/sql/approvals.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { conflict, forbidden } from '../errors.js';
import { hasRole, sameSubject, type Principal } from '../principal.js';
import { lockRunForUpdate, transition } from '../runs/transition.js';
import { scheduleApproved } from '../scheduler/schedule-run.js';
import { promotionEvidence, recordPromotion } from '../policy/promotion.js';
import { fillsASlot, openSlots, type ApproverRole } from './policy.js';

export interface DecisionInput {
  role: ApproverRole;
  decision: 'approve' | 'reject';
  comment?: string;
}

/**
 * Records one approver's decision on the exact digest preflight checked, and
 * moves the run to approved (policy satisfied) or rejected, in one transaction.
 */
export function createApprovalsService(ctx: ServiceContext) {
  async function decide(runId: string, principal: Principal, input: DecisionInput): Promise<void> {
    if (!hasRole(principal, input.role)) {
      throw forbidden(`${principal.subject} does not hold the ${input.role} role and cannot decide as ${input.role}.`);
    }
    try {
      await transaction(ctx.control, async (client) => {
        const run = await lockRunForUpdate(client, runId);
        if (sameSubject(run.requested_by, principal.subject)) {
          throw forbidden(`${principal.subject} requested run ${runId} and cannot ${input.decision} it; ask another ${input.role} approver${input.decision === 'reject' ? ' or cancel the run' : ''}.`);
        }
        if (run.status !== 'awaiting_approval') {
          throw conflict(`Run ${runId} is ${run.status}; decisions are only taken while it is awaiting_approval.`, { currentStatus: run.status });
        }
        const decided = await rows<{ subject: string; role: string; decision: string }>(client, approvalsForDigest(runId, run.digest));
        const mine = decided.find((d) => sameSubject(d.subject, principal.subject));
        if (mine) {
          throw conflict(`${principal.subject} already decided on this run (${mine.decision} as ${mine.role}); one subject cannot approve twice or fill two roles.`);
        }
        const required = run.required_approvals;
        const approvals = decided.filter((d) => d.decision === 'approve');
        const open = openSlots(required, approvals);
        if (input.decision === 'approve' && !fillsASlot(open, input.role)) {
          throw conflict(`The ${run.environment} policy needs no further ${input.role} approval; still needed: ${open.join(', ')}.`);
        }
        const env = ctx.config.environments[run.environment];
        const promotion = input.decision === 'approve' && env ? await promotionEvidence(client, env, run) : null;
        await exec(client, insertApproval({
          runId, subject: principal.subject, role: input.role, decision: input.decision, comment: input.comment ?? '', digest: run.digest,
        }));
        await appendEvent(client, {
          runId,
          environment: run.environment,
          type: input.decision === 'approve' ? 'approval.approved' : 'approval.rejected',
          actor: principal.subject,
          details: { role: input.role, comment: input.comment ?? '', digest: run.digest },
        });
        if (input.decision === 'reject') {
          await transition(client, run, 'rejected', { actor: principal.subject, details: { role: input.role, comment: input.comment ?? '' } });
        } else if (openSlots(required, [...approvals, { role: input.role }]).length === 0) {
          const approvers = [...approvals.map((a) => a.subject), principal.subject];
          await transition(client, run, 'approved', { actor: principal.subject, details: { digest: run.digest, approvers } });
          if (promotion) await recordPromotion(client, run, principal.subject, promotion);
          await scheduleApproved(client, env, run);
        }
      });
    } catch (err) {
      // Two concurrent decisions by one subject: the unique constraint is the referee.
      if (isPgError(err, UNIQUE_VIOLATION)) throw conflict(`${principal.subject} already decided on this run.`);
      throw err;
    }
  }

  return { decide };
}

export type ApprovalsService = ReturnType<typeof createApprovalsService>;
