import { maybeOne, one, rows, transaction } from '../../database/db.js';
import { APPLY_LOCK_CLASS } from '../../database/sql/apply.js';
import { applyLockHolders, leaseLapsedFor, takeOverLease } from '../../database/sql/recovery.js';
import { selectRun } from '../../database/sql/runs.js';
import { inFlightRuns, terminateBackend, type InFlightRow } from '../../database/sql/scheduler.js';
import { appendEvent } from '../audit.js';
import type { Background } from '../background.js';
import type { ServiceContext } from '../context.js';
import type { RunStatus } from '../runs/state-machine.js';
import type { Lease } from '../scheduler/lease.js';
import type { ApplyState } from './apply-state.js';
import { inspectInterrupted, markInterrupted, type ReconcileRun } from './interrupt.js';
import { reconcileRollback } from './rollback-reconcile.js';
import { tryLockRun, waitLockRun, type RunLock } from './run-lock.js';
import { completeWatch } from './watch-phase.js';

/** How long a terminated lock holder's backend gets to exit and let go of the lock; past it, the next sweep tries again. */
const TERMINATED_HOLDER_EXIT_MS = 5_000;

/** Statuses a live process is working on: each holds the run's apply lock and a lease. */
export const IN_FLIGHT: RunStatus[] = ['applying', 'verifying', 'monitoring', 'rolling_back', 'restoring'];

export interface ReconcileDeps {
  lease: Lease;
  background: Background;
  /** Shutdown: a watch taken over here is handed on again. */
  stop: AbortSignal;
}

/**
 * The lock of a run whose owner is gone. A free lock is the common case (a
 * dead process's connection, and its locks, go with it). A lock still held
 * although the lease lapsed twice over belongs to a process cut off from the
 * control database whose session the server has not dropped yet: that
 * process fenced itself when it could not renew (services/scheduler/lease.ts),
 * so its session is terminated and the lock taken. pg_terminate_backend only
 * signals: the backend lets go of the lock as it exits, so the lock is waited
 * for (the server grants it then), not tried once.
 */
async function lockOrphanedRun(ctx: ServiceContext, deps: ReconcileDeps, runId: string): Promise<RunLock | null> {
  const lock = await tryLockRun(ctx.control, runId);
  if (lock) return lock;
  const lapsed = await maybeOne<{ lapsed: boolean }>(ctx.control, leaseLapsedFor(runId, 2 * deps.lease.ms));
  if (!lapsed?.lapsed) return null;
  const holders = await rows<{ pid: number }>(ctx.control, applyLockHolders(APPLY_LOCK_CLASS, runId));
  for (const h of holders) await one(ctx.control, terminateBackend(h.pid));
  if (holders.length) ctx.log.warn({ runId, sessions: holders.map((h) => h.pid) }, 'terminated the control sessions of a silent run owner');
  return waitLockRun(ctx.control, runId, TERMINATED_HOLDER_EXIT_MS);
}

/**
 * A run left in flight by a process that died (or went silent): decided in
 * SQL (the run's apply lock, its lease), never by a timer alone. At start-up
 * every in-flight run whose lock is free is looked at; the periodic sweep
 * (every replica, scheduler on or off) only those whose lease lapsed.
 *
 * - applying / verifying: the dead attempt's processes and target sessions
 *   are stopped, what landed is recorded, the run becomes interrupted (close,
 *   re-apply or roll back from there). Nothing is re-applied automatically.
 * - monitoring: this replica takes the lease and carries the watch on to its
 *   stored end; the run ends succeeded or degraded on time.
 * - rolling_back / restoring: what the down or restore achieved is read from
 *   the target and recorded; the run ends rolled_back / restored, or failed.
 *
 * Returns the runs marked interrupted.
 */
export async function reconcileInFlight(ctx: ServiceContext, deps: ReconcileDeps, opts: { expiredLeasesOnly?: boolean } = {}): Promise<string[]> {
  const { control, log } = ctx;
  const candidates = await rows<InFlightRow>(control, inFlightRuns(IN_FLIGHT, opts.expiredLeasesOnly ?? false));
  const interrupted: string[] = [];
  for (const { id } of candidates) {
    const lock = await lockOrphanedRun(ctx, deps, id);
    if (!lock) continue;
    let handedOff = false;
    try {
      const run = await maybeOne<ReconcileRun & { apply_state: ApplyState }>(control, selectRun(id));
      if (!run || !IN_FLIGHT.includes(run.status as RunStatus)) continue;
      if (run.status === 'monitoring') {
        handedOff = await takeOverWatch(ctx, deps, run, lock);
      } else if (run.status === 'rolling_back' || run.status === 'restoring') {
        await reconcileRollback(ctx, run);
      } else {
        const reconciliation = await inspectInterrupted(ctx, run);
        if (await markInterrupted(ctx, run, reconciliation)) interrupted.push(id);
      }
    } catch (err) {
      log.error({ err, runId: id }, 'could not reconcile an in-flight run; retrying at the next sweep');
    } finally {
      if (!handedOff) await lock.release();
    }
  }
  if (interrupted.length) log.warn({ runs: interrupted }, 'marked runs interrupted by a previous process');
  return interrupted;
}

/** Takes the lease of a monitoring run whose owner is gone and ends its watch here, in the background. */
async function takeOverWatch(ctx: ServiceContext, deps: ReconcileDeps, run: ReconcileRun & { apply_state: ApplyState }, lock: RunLock): Promise<boolean> {
  if (deps.background.isClosed()) return false;
  const taken = await transaction(ctx.control, async (client) => {
    const claimed = await maybeOne(client, takeOverLease(run.id, ['monitoring'], deps.lease.owner, deps.lease.ms));
    if (!claimed) return false;
    await appendEvent(client, {
      runId: run.id, environment: run.environment, type: 'watch.taken_over', actor: 'system',
      details: { previousOwner: run.lease_owner ?? null, instance: deps.lease.owner, endsAt: run.apply_state.watch?.window.endsAt ?? null },
    });
    return true;
  });
  if (!taken) return false;
  const report = run.apply_state.report;
  if (report) report.watchTakenOverBy = [...(report.watchTakenOverBy ?? []), deps.lease.owner];
  const held = deps.lease.hold(run.id);
  deps.background.track((async () => {
    try {
      await completeWatch(ctx, run, 'system', AbortSignal.any([deps.stop, held.signal]));
    } catch (err) {
      ctx.log.error({ err, runId: run.id }, 'the watch this replica took over failed; another sweep carries it on');
    } finally {
      await held.stop();
      await lock.release();
    }
  })());
  return true;
}
