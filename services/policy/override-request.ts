import { exec, maybeOne, one, transaction } from '../../database/db.js';
import { isPgError, UNIQUE_VIOLATION } from '../../database/pg-errors.js';
import { decideOverride, insertOverride, openOverride, type OverrideRow } from '../../database/sql/overrides.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { conflict } from '../errors.js';
import type { Principal } from '../principal.js';
import { lockRunForUpdate } from '../runs/transition.js';
import type { Interval } from '../windows/windows.js';
import { recordConfirmation, type ConfirmOutcome } from './confirm.js';

export interface WindowOverride {
  id: string;
  runId: string;
  digest: string;
  status: OverrideRow['status'];
  requestedBy: string;
  reason: string;
  decidedBy: string | null;
  decisionComment: string | null;
  decidedAt: string | null;
  createdAt: string;
}

export function presentOverride(row: OverrideRow): WindowOverride {
  return {
    id: row.id, runId: row.run_id, digest: row.digest, status: row.status, requestedBy: row.requested_by, reason: row.reason,
    decidedBy: row.decided_by, decisionComment: row.decision_comment, decidedAt: row.decided_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
  };
}

export const APPLYABLE = ['approved', 'scheduled'] as const;

/**
 * An operator's confirmation outside the windows with overrideWindow: records
 * the confirmation and an override request awaiting a different sre. Nothing
 * is applied until that sre approves. An open request for content the run no
 * longer carries is expired first, so it never blocks a fresh one.
 */
export async function requestOverride(ctx: ServiceContext, runId: string, principal: Principal, env: EnvironmentConfig, reason: string, next: Interval | null): Promise<ConfirmOutcome> {
  if (env.windows.length === 0) throw conflict(`${env.name} has no maintenance windows, so there is no window to override.`);
  try {
    return await transaction(ctx.control, async (client) => {
      const run = await lockRunForUpdate(client, runId);
      if (!(APPLYABLE as readonly string[]).includes(run.status)) throw conflict(`Run ${runId} is ${run.status}; only approved or scheduled runs can be applied.`, { currentStatus: run.status });
      const open = await maybeOne<OverrideRow>(client, openOverride(runId));
      if (open && open.digest === run.digest) {
        throw conflict(`Run ${runId} already has a window override awaiting approval (asked by ${open.requested_by}); an sre other than them approves or rejects it.`, { overrideId: open.id });
      }
      if (open) {
        await exec(client, decideOverride(open.id, 'expired', null, 'the run carries other content now'));
        await appendEvent(client, { runId, environment: run.environment, type: 'override.expired', actor: 'system', details: { overrideId: open.id, digest: open.digest, reason: 'the run carries other content now' } });
      }
      const row = await one<OverrideRow>(client, insertOverride(runId, run.digest, principal.subject, reason));
      const nextWindow = next ? { start: next.start.toISOString(), end: next.end.toISOString() } : null;
      await recordConfirmation(client, run, principal.subject, { outcome: 'override-requested', overrideId: row.id, reason });
      await appendEvent(client, { runId, environment: run.environment, type: 'override.requested', actor: principal.subject, details: { overrideId: row.id, reason, digest: run.digest, nextWindow } });
      return { outcome: 'override-requested', overrideId: row.id } as const;
    });
  } catch (err) {
    if (isPgError(err, UNIQUE_VIOLATION)) throw conflict(`Run ${runId} already has a window override awaiting approval.`);
    throw err;
  }
}
