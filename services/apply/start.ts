import type pg from 'pg';
import { exec, maybeOne, transaction, type Query } from '../../database/db.js';
import { takeLease } from '../../database/sql/scheduler.js';
import type { Background } from '../background.js';
import { unavailable } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RunStatus } from '../runs/state-machine.js';
import { lockRunForUpdate, transition, type LockedRun } from '../runs/transition.js';
import type { Lease } from '../scheduler/lease.js';
import { tryLockRun } from './run-lock.js';

export interface Gate {
  /** Lock retries stop at this instant (the window's end); null = attempts only. */
  deadline: Date | null;
  details?: Record<string, unknown>;
}

export interface StartOptions {
  /** Statuses the run may start from (others: 409 from the state machine). */
  expect: RunStatus[];
  /** The audit event of the move to applying (default apply.started; a re-apply: apply.reapplied). */
  type?: string;
  details?: Record<string, unknown>;
  deadline?: Date | null;
  /** Selects and row-locks the run instead of a plain FOR UPDATE (the scheduler's SKIP LOCKED claim); no row = not started. */
  claim?: Query;
  /**
   * Runs in the transaction holding the run's row, before it moves to
   * applying: returns the deadline, or null to leave the run as the gate
   * left it (the gate records why; its writes commit).
   */
  gate?: (client: pg.PoolClient, run: LockedRun) => Promise<Gate | null>;
}

export type StartResult = { outcome: 'started'; finished: Promise<void> } | { outcome: 'busy' | 'declined' };

export interface StarterDeps {
  control: pg.Pool;
  log: Logger;
  background: Background;
  lease: Lease;
  pipeline: (runId: string, actor: string, deadline: Date | null, fence: AbortSignal) => Promise<void>;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * Starting an apply, the same for the API, the scheduler and a re-apply. The
 * run's apply lock is taken before the run moves to applying and held until
 * the pipeline ends, so an in-flight run whose lock is free always means its
 * owner died (what reconciliation relies on); the move itself takes a lease
 * that a heartbeat renews while the pipeline runs.
 */
export function createStarter({ control, log, background, lease, pipeline }: StarterDeps) {
  return async function start(runId: string, actor: string, opts: StartOptions): Promise<StartResult> {
    if (background.isClosed()) throw unavailable('This replica is shutting down; apply again shortly.');
    const runLock = await tryLockRun(control, runId);
    if (!runLock) return { outcome: 'busy' };
    let handedOff = false;
    try {
      const gate = await transaction(control, async (client) => {
        const run = opts.claim ? await maybeOne<LockedRun>(client, opts.claim) : await lockRunForUpdate(client, runId);
        if (!run) return null;
        const decided = opts.gate ? await opts.gate(client, run) : { deadline: opts.deadline ?? null };
        if (!decided) return null;
        await transition(client, run, 'applying', {
          actor,
          type: opts.type ?? 'apply.started',
          expect: opts.expect,
          details: { ...opts.details, ...decided.details, deadline: iso(decided.deadline), instance: lease.owner },
        });
        await exec(client, takeLease(runId, lease.owner, lease.ms));
        return decided;
      });
      if (!gate) return { outcome: 'declined' };
      handedOff = true;
      const held = lease.hold(runId);
      const finished = (async () => {
        try {
          await pipeline(runId, actor, gate.deadline, held.signal);
        } catch (err) {
          // Left in flight with its lease dropped: the next sweep reconciles it.
          log.error({ err, runId }, 'apply failed unexpectedly');
        } finally {
          await held.stop();
          await runLock.release();
        }
      })();
      background.track(finished);
      return { outcome: 'started', finished };
    } finally {
      if (!handedOff) await runLock.release();
    }
  };
}

export type Starter = ReturnType<typeof createStarter>;
