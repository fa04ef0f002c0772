import { maybeOne, one, rows, transaction } from '../../database/db.js';
import { decideOverride, openOverride, overridesOfRun, pendingOverride, type OverrideRow } from '../../database/sql/overrides.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import { driftOf, type ApplyService } from '../apply/apply-service.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { conflict, forbidden, notFound } from '../errors.js';
import type { Principal } from '../principal.js';
import { lockRunForUpdate } from '../runs/transition.js';
import { windowForApply } from '../scheduler/policy.js';
import { freezeAt } from '../windows/windows.js';
import { APPLYABLE, presentOverride, type WindowOverride } from './override-request.js';
import { sameSubject } from '../principal.js';

export interface OverrideDecision {
  decision: 'approve' | 'reject';
  comment?: string;
}

/**
 * Window overrides are co-signed: the operator who confirmed outside the
 * windows asks (override-request.ts), a different sre decides here. Approval
 * starts the apply at once, in the transaction that records the approval, so
 * an approved override is never left lying around to be used later.
 */
export function createOverridesService(ctx: ServiceContext, apply: Pick<ApplyService, 'start'>) {
  const { control, config } = ctx;

  async function loadRun(runId: string): Promise<RunRow> {
    const run = await maybeOne<RunRow>(control, selectRun(runId));
    if (!run) throw notFound(`Run ${runId} does not exist.`);
    return run;
  }

  async function list(runId: string): Promise<WindowOverride[]> {
    await loadRun(runId);
    return (await rows<OverrideRow>(control, overridesOfRun(runId))).map(presentOverride);
  }

  async function expire(runId: string, open: OverrideRow, why: string): Promise<never> {
    await transaction(control, async (client) => {
      const run = await lockRunForUpdate(client, runId);
      const still = await maybeOne<OverrideRow>(client, openOverride(runId));
      if (still?.id !== open.id) return;
      await one(client, decideOverride(open.id, 'expired', null, why));
      await appendEvent(client, { runId, environment: run.environment, type: 'override.expired', actor: 'system', details: { overrideId: open.id, reason: why } });
    });
    throw conflict(`The window override ${open.id} no longer applies: ${why}. Nothing was applied; the operator may ask again.`, { code: 'override-expired' });
  }

  async function decide(runId: string, principal: Principal, input: OverrideDecision, now = new Date()): Promise<WindowOverride> {
    const run = await loadRun(runId);
    const env = config.environments[run.environment];
    if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
    const open = await maybeOne<OverrideRow>(control, pendingOverride(runId));
    if (!open) throw conflict(`Run ${runId} has no window override awaiting approval.`);
    if (sameSubject(open.requested_by, principal.subject)) {
      throw forbidden(`${principal.subject} asked for this window override; another sre must approve or reject it.`);
    }
    const comment = input.comment ?? '';
    if (input.decision === 'reject') {
      return transaction(control, async (client) => {
        const locked = await lockRunForUpdate(client, runId);
        const row = await maybeOne<OverrideRow>(client, decideOverride(open.id, 'rejected', principal.subject, comment));
        if (!row) throw conflict(`The window override ${open.id} was decided meanwhile.`);
        await appendEvent(client, { runId, environment: locked.environment, type: 'override.rejected', actor: principal.subject, details: { overrideId: open.id, requestedBy: open.requested_by, comment } });
        return presentOverride(row);
      });
    }
    if (!(APPLYABLE as readonly string[]).includes(run.status)) return expire(runId, open, `the run is ${run.status}`);
    if (open.digest !== run.digest) return expire(runId, open, 'the run carries other content than when it was asked');
    const freeze = freezeAt(env.freezes, now);
    if (freeze) throw conflict(`${env.name} is frozen until ${freeze.to.toISOString()} (${freeze.reason}); a freeze always wins, even over a co-signed override.`);
    const drift = await driftOf(ctx, run, env);
    if (drift) {
      await transaction(control, (client) => appendEvent(client, { runId, environment: run.environment, type: 'apply.refused', actor: principal.subject, details: { code: 'drift', reason: drift } }));
      throw conflict(`Refused: ${drift}. Nothing was changed; re-run preflight and get the new content approved.`, { code: 'drift' });
    }
    const slot = windowForApply(env, now);
    let decided: OverrideRow | null = null;
    const started = await apply.start(runId, principal.subject, {
      expect: [...APPLYABLE],
      deadline: slot.deadline,
      details: { reason: open.reason, overrideWindow: true, overrideId: open.id, requestedBy: open.requested_by, digest: run.digest, window: null },
      gate: async (client, locked) => {
        const still = await maybeOne<OverrideRow>(client, openOverride(runId));
        if (!still || still.id !== open.id || still.digest !== locked.digest) return null;
        decided = await one<OverrideRow>(client, decideOverride(open.id, 'approved', principal.subject, comment));
        const nextWindow = slot.next ? { start: slot.next.start.toISOString(), end: slot.next.end.toISOString() } : null;
        await appendEvent(client, { runId, environment: locked.environment, type: 'override.approved', actor: principal.subject, details: { overrideId: open.id, requestedBy: open.requested_by, comment } });
        await appendEvent(client, {
          runId, environment: locked.environment, type: 'apply.window_overridden', actor: principal.subject,
          details: { overrideId: open.id, requestedBy: open.requested_by, approvedBy: principal.subject, reason: open.reason, nextWindow },
        });
        return { deadline: slot.deadline };
      },
    });
    if (started.outcome === 'busy') throw conflict(`Run ${runId} is being started by another process (the scheduler or another replica); check its status.`);
    if (started.outcome === 'declined' || !decided) throw conflict(`The window override ${open.id} was decided or expired meanwhile; nothing was applied.`);
    return presentOverride(decided);
  }

  return { list, decide };
}

export type OverridesService = ReturnType<typeof createOverridesService>;
