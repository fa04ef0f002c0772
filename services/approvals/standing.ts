import type pg from 'pg';
import { rows } from '../../database/db.js';
import { approvalsForDigest } from '../../database/sql/approvals.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { LockedRun } from '../runs/transition.js';
import { transition } from '../runs/transition.js';
import { scheduleApproved } from '../scheduler/schedule-run.js';
import { openSlots } from './policy.js';

/**
 * A run back in awaiting_approval (a re-run preflight passed, or acknowledgements
 * cleared its last error): approvals given for exactly this digest still stand,
 * and their approvers cannot approve it again, so a satisfied policy makes the
 * run approved again instead of leaving it stuck. In the caller's transaction.
 */
export async function reinstateStandingApprovals(client: pg.ClientBase, env: EnvironmentConfig | undefined, run: LockedRun, digest: string): Promise<void> {
  const approvals = (await rows<{ subject: string; role: string; decision: string }>(client, approvalsForDigest(run.id, digest)))
    .filter((a) => a.decision === 'approve');
  if (approvals.length === 0 || openSlots(run.required_approvals, approvals).length > 0) return;
  await transition(client, run, 'approved', {
    actor: 'system',
    details: { digest, approvers: approvals.map((a) => a.subject), reason: 'approvals for this digest still stand' },
  });
  await scheduleApproved(client, env, run);
}
