import type pg from 'pg';
import { exec, maybeOne } from '../../database/db.js';
import { lockRun, updateRunStatus, type RunPatch } from '../../database/sql/runs.js';
import { appendEvent } from '../audit.js';
import { conflict, notFound } from '../errors.js';
import type { ApprovalSlot } from '../environments/model.js';
import { canTransition, type RunStatus } from './state-machine.js';

export interface LockedRun {
  id: string;
  environment: string;
  status: RunStatus;
  requested_by: string;
  digest: string;
  required_approvals: ApprovalSlot[];
  target_to: string | null;
}

export async function lockRunForUpdate(client: pg.ClientBase, runId: string): Promise<LockedRun> {
  const run = await maybeOne<LockedRun>(client, lockRun(runId));
  if (!run) throw notFound(`Run ${runId} does not exist.`);
  return run;
}

export interface TransitionOptions {
  actor: string;
  type?: string;
  details?: Record<string, unknown>;
  patch?: RunPatch;
  /** Refuse unless the run is in one of these (a narrower rule than the state machine's). */
  expect?: RunStatus[];
}

/**
 * Moves a locked run to `to` and appends its audit event, in the caller's
 * transaction. An illegal move is a 409 naming the current status.
 */
export async function transition(client: pg.ClientBase, run: LockedRun, to: RunStatus, opts: TransitionOptions): Promise<void> {
  if (!canTransition(run.status, to) || (opts.expect && !opts.expect.includes(run.status))) {
    throw conflict(`Run ${run.id} is ${run.status}; it cannot move to ${to}.`, { currentStatus: run.status });
  }
  await exec(client, updateRunStatus(run.id, to, opts.patch ?? {}));
  await appendEvent(client, {
    runId: run.id,
    environment: run.environment,
    type: opts.type ?? `run.${to}`,
    actor: opts.actor,
    from: run.status,
    to,
    details: opts.details,
  });
  run.status = to;
}
