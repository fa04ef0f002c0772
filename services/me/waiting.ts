import { rows } from '../../database/db.js';
import { runsWithOpenRollbackRequests } from '../../database/sql/waiting.js';
import type { RollbackRequest, RollbackService } from '../apply/rollback-service.js';
import { openSlots } from '../approvals/policy.js';
import type { ServiceContext } from '../context.js';
import type { Principal } from '../principal.js';
import type { ApiRun } from '../runs/present.js';
import type { RunsService } from '../runs/runs-service.js';
import { capabilitiesOf } from './capabilities.js';

export interface Waiting {
  /** Runs awaiting an approval the caller may give: not their own, not decided by them, a slot open for one of their roles. */
  approvals: Array<{ run: ApiRun; asRoles: Array<'engineering' | 'sre'> }>;
  /** Rollback or restore requests an sre other than their requester must decide. */
  rollbacks: Array<{ run: ApiRun; request: RollbackRequest }>;
}

// One active run per environment: awaiting runs are few; open rollback requests are capped.
const LIMIT = 100;

export function createWaitingService(ctx: ServiceContext & { runs: RunsService; rollback: RollbackService }) {
  async function waitingFor(principal: Principal): Promise<Waiting> {
    const can = capabilitiesOf(principal);
    const out: Waiting = { approvals: [], rollbacks: [] };
    if (can.approveAs.length > 0) {
      const { items } = await ctx.runs.list({ status: 'awaiting_approval', limit: LIMIT });
      for (const run of items) {
        if (run.requestedBy === principal.subject) continue;
        const current = run.approvals.filter((a) => a.current);
        if (current.some((a) => a.subject === principal.subject)) continue;
        const open = openSlots(run.requiredApprovals as Parameters<typeof openSlots>[0], current.filter((a) => a.decision === 'approve'));
        const asRoles = can.approveAs.filter((role) => open.includes(role) || open.includes('any'));
        if (asRoles.length > 0) out.approvals.push({ run, asRoles });
      }
    }
    if (can.approveRollback) {
      const found = await rows<{ run_id: string }>(ctx.control, runsWithOpenRollbackRequests(principal.subject, LIMIT));
      for (const { run_id: runId } of found) {
        const request = (await ctx.rollback.list(runId)).find((r) => r.status === 'awaiting_approval' && r.requestedBy !== principal.subject);
        if (request) out.rollbacks.push({ run: await ctx.runs.get(runId), request });
      }
    }
    return out;
  }

  return { waitingFor };
}

export type WaitingService = ReturnType<typeof createWaitingService>;
