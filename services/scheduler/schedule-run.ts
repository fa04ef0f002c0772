import type pg from 'pg';
import { maybeOne, one } from '../../database/db.js';
import { preflightEstimate, scheduleOfRun, type ScheduleRow } from '../../database/sql/scheduler.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { appendEvent } from '../audit.js';
import { transition, type LockedRun } from '../runs/transition.js';
import { firstSlot, marginFor, type ScheduleMode } from './policy.js';

export const SCHEDULER_ACTOR = 'scheduler';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** The latest preflight's estimate in ms (0 when preflight gave none). */
export async function estimateOf(client: pg.ClientBase, runId: string): Promise<{ estimateMs: number; known: boolean }> {
  const row = await maybeOne<{ estimated_ms: string | null }>(client, preflightEstimate(runId));
  const value = row?.estimated_ms == null ? NaN : Number(row.estimated_ms);
  return Number.isFinite(value) ? { estimateMs: value, known: true } : { estimateMs: 0, known: false };
}

/**
 * Right after a run becomes approved, in the same transaction. In an
 * environment whose apply mode is `confirm` the run stays approved (audited)
 * until an operator confirms it; in `auto` it is armed at once (armRun).
 */
export async function scheduleApproved(client: pg.ClientBase, env: EnvironmentConfig | undefined, run: LockedRun, now = new Date()): Promise<void> {
  if (run.status !== 'approved' || !env) return;
  if (env.apply.mode === 'confirm') {
    await appendEvent(client, {
      runId: run.id,
      environment: run.environment,
      type: 'apply.awaiting_confirmation',
      actor: SCHEDULER_ACTOR,
      details: {
        mode: 'confirm',
        reason: `${env.name} applies only on an operator's confirmation: POST /v1/runs/${run.id}/apply {"confirm": "${env.name}"} (inside a window it applies now, otherwise it is scheduled for the next fitting window)`,
      },
    });
    return;
  }
  await armRun(client, env, run, SCHEDULER_ACTOR, now);
}

export type ArmResult = { armed: true; scheduledFor: Date; window: { start: Date; end: Date } | null } | { armed: false };

/**
 * Moves an approved run to scheduled for its first slot (mode "window": the
 * first window the estimate plus margin fits in; "now": as soon as a window
 * is open; "at": the requested time). With no slot in reach it stays
 * approved, audited, and an operator may apply it with a co-signed override.
 */
export async function armRun(client: pg.ClientBase, env: EnvironmentConfig, run: LockedRun, actor: string, now = new Date()): Promise<ArmResult> {
  const { schedule, scheduled_for } = await one<ScheduleRow>(client, scheduleOfRun(run.id));
  const mode: ScheduleMode = schedule.mode ?? 'window';
  const { estimateMs, known } = await estimateOf(client, run.id);
  const slot = firstSlot(env, mode, estimateMs, now, mode === 'at' ? scheduled_for ?? (schedule.at ? new Date(schedule.at) : null) : null);
  const details = {
    mode,
    estimatedMs: known ? estimateMs : null,
    marginMs: mode === 'window' && env.windows.length ? marginFor(estimateMs) : null,
  };
  if (!slot) {
    await appendEvent(client, {
      runId: run.id,
      environment: run.environment,
      type: 'schedule.unschedulable',
      actor,
      details: { ...details, reason: 'no maintenance window in reach fits the estimate plus margin; an operator may ask for a window override (an sre other than them approves it)' },
    });
    return { armed: false };
  }
  await transition(client, run, 'scheduled', {
    actor,
    details: { ...details, scheduledFor: slot.at.toISOString(), window: slot.window ? { start: iso(slot.window.start), end: iso(slot.window.end) } : null },
    patch: { scheduledFor: slot.at },
  });
  return { armed: true, scheduledFor: slot.at, window: slot.window };
}
