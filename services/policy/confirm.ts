import type pg from 'pg';
import { one, transaction } from '../../database/db.js';
import { scheduleOfRun, type ScheduleRow } from '../../database/sql/scheduler.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { conflict, unprocessable } from '../errors.js';
import type { Principal } from '../principal.js';
import { lockRunForUpdate, type LockedRun } from '../runs/transition.js';
import { windowForApply } from '../scheduler/policy.js';
import { armRun } from '../scheduler/schedule-run.js';
import type { Interval } from '../windows/windows.js';

// An operator's confirmation of an approved run (POST /v1/runs/:id/apply with
// the environment's name): inside an open window (or with none configured) it
// applies now; outside, it arms the run for its next fitting window, or, with
// overrideWindow, asks for a window override that a different sre co-signs.

export interface ConfirmInput {
  confirm: string;
  overrideWindow?: boolean;
  reason?: string;
}

export type Confirmation =
  | { kind: 'now'; window: Interval | null; deadline: Date | null }
  | { kind: 'arm'; next: Interval | null }
  | { kind: 'override'; reason: string; next: Interval | null };

export type ConfirmOutcome = { outcome: 'applying' } | { outcome: 'scheduled'; scheduledFor: string } | { outcome: 'override-requested'; overrideId: string };

const span = (w: Interval | null) => (w ? { start: w.start.toISOString(), end: w.end.toISOString() } : null);

/** What a confirmation does now, from the windows alone (no I/O). The caller checks freezes first. */
export function decideConfirmation(env: EnvironmentConfig, input: ConfirmInput, now: Date): Confirmation {
  const slot = windowForApply(env, now);
  if (slot.open) return { kind: 'now', window: slot.window, deadline: slot.deadline };
  if (input.overrideWindow !== true) return { kind: 'arm', next: slot.next };
  if (!input.reason?.trim()) {
    throw unprocessable('"reason" is required to ask for a window override.', { errors: [{ path: 'body/reason', message: 'is required with overrideWindow' }] });
  }
  return { kind: 'override', reason: input.reason, next: slot.next };
}

/** The confirmation's audit event, in the transaction that acts on it. */
export async function recordConfirmation(client: pg.ClientBase, run: Pick<LockedRun, 'id' | 'environment' | 'digest'>, actor: string, details: Record<string, unknown>): Promise<void> {
  await appendEvent(client, {
    runId: run.id,
    environment: run.environment,
    type: 'apply.confirmed',
    actor,
    details: { confirm: run.environment, digest: run.digest, ...details },
  });
}

/**
 * Outside a window: the confirmation schedules an approved run for its next
 * fitting slot (mode window / now / at, as on approval in `auto`). A run
 * already scheduled keeps its slot; one no window can hold is refused, and
 * only a co-signed override can apply it.
 */
export async function armConfirmed(ctx: ServiceContext, runId: string, principal: Principal, env: EnvironmentConfig, next: Interval | null, now: Date): Promise<ConfirmOutcome> {
  return transaction(ctx.control, async (client) => {
    const run = await lockRunForUpdate(client, runId);
    const nextWindow = span(next);
    const overrideHint = 'ask for a window override ("overrideWindow": true and a "reason"; an sre other than you approves it)';
    if (run.status === 'scheduled') {
      const { scheduled_for } = await one<ScheduleRow>(client, scheduleOfRun(runId));
      throw conflict(`${env.name} has no maintenance window open now; run ${runId} is already scheduled for ${scheduled_for?.toISOString() ?? 'its next window'} and starts then. To apply it now, ${overrideHint}.`, { code: 'outside-window', nextWindow });
    }
    if (run.status !== 'approved') throw conflict(`Run ${runId} is ${run.status}; only approved or scheduled runs can be applied.`, { currentStatus: run.status });
    const armed = await armRun(client, env, run, principal.subject, now);
    // Throwing rolls back the unschedulable event armRun wrote: a refused confirmation changes nothing.
    if (!armed.armed) {
      throw conflict(`${env.name} has no maintenance window open now${next ? ` (the next one opens ${next.start.toISOString()})` : ''}, and none in reach fits the run's estimate; applying it needs a window override: ${overrideHint}.`, { code: 'outside-window', nextWindow });
    }
    await recordConfirmation(client, run, principal.subject, { outcome: 'scheduled', scheduledFor: armed.scheduledFor.toISOString(), window: span(armed.window) });
    return { outcome: 'scheduled', scheduledFor: armed.scheduledFor.toISOString() };
  });
}
