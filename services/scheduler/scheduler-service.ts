import cron, { type ScheduledTask } from 'node-cron';
import type pg from 'pg';
import { exec, rows } from '../../database/db.js';
import { claimDueRun, dueRuns, rescheduleRun, type ScheduleRow } from '../../database/sql/scheduler.js';
import type { ApplyService } from '../apply/apply-service.js';
import type { Gate } from '../apply/start.js';
import { appendEvent } from '../audit.js';
import type { ServiceContext } from '../context.js';
import { transition, type LockedRun } from '../runs/transition.js';
import { decideAtTick, marginFor, type ScheduleMode } from './policy.js';
import { estimateOf, SCHEDULER_ACTOR } from './schedule-run.js';

/** Scheduled applies one replica runs at once; the others pick up the rest. */
export const MAX_PARALLEL_APPLIES = 3;
/** Due runs looked at per tick. */
const DUE_BATCH = 50;

export interface TickResult {
  started: string[];
  rescheduled: string[];
  unscheduled: string[];
  interrupted: string[];
  /** Due runs another replica (or an API apply) was starting at that moment. */
  busy: string[];
  /** Runs whose approved rollback or restore, held for a window, started. */
  rollbacks: string[];
}

/** Approved rollbacks held for a window (the rollback service). */
export interface DueRollbacks {
  startDue(now: Date): Promise<string[]>;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

/** node-cron's expression for "every n seconds" (n divides 60). */
export function tickExpression(seconds: number): string {
  return seconds >= 60 ? '0 * * * * *' : `*/${seconds} * * * * *`;
}

/**
 * The scheduler: node-cron only fires the tick; the control database decides
 * who applies what (a row lock with SKIP LOCKED, the run's apply lock and a
 * lease), so any number of replicas can tick at once. Each tick first
 * sweeps in-flight runs whose lease lapsed (their process died), then starts
 * due runs whose window is still open and still fits, and moves the others
 * to their next window, audited.
 */
export function createScheduler(ctx: ServiceContext, apply: ApplyService, rollbacks?: DueRollbacks) {
  const { control, config, log } = ctx;
  let task: ScheduledTask | null = null;
  let ticking: Promise<TickResult> | null = null;
  const running = new Set<Promise<void>>();

  async function gate(client: pg.PoolClient, run: LockedRun & ScheduleRow, now: Date, result: TickResult): Promise<Gate | null> {
    const env = config.environments[run.environment];
    if (!env) {
      log.warn({ runId: run.id, environment: run.environment }, 'scheduled run of an environment no longer configured: left as it is');
      return null;
    }
    const mode: ScheduleMode = run.schedule?.mode ?? 'window';
    const { estimateMs } = await estimateOf(client, run.id);
    const decision = decideAtTick(env, mode, estimateMs, now);
    if (decision.kind === 'start') {
      return {
        deadline: decision.deadline,
        details: {
          mode, scheduledFor: iso(run.scheduled_for), estimatedMs: estimateMs, marginMs: mode === 'window' && env.windows.length ? marginFor(estimateMs) : null,
          window: decision.window ? { start: iso(decision.window.start), end: iso(decision.window.end) } : null,
        },
      };
    }
    if (decision.next) {
      await exec(client, rescheduleRun(run.id, decision.next.at));
      await appendEvent(client, {
        runId: run.id,
        environment: run.environment,
        type: 'run.rescheduled',
        actor: SCHEDULER_ACTOR,
        details: {
          reason: decision.reason, mode, estimatedMs: estimateMs, from: iso(run.scheduled_for), to: iso(decision.next.at),
          window: decision.next.window ? { start: iso(decision.next.window.start), end: iso(decision.next.window.end) } : null,
        },
      });
      result.rescheduled.push(run.id);
    } else {
      await transition(client, run, 'approved', {
        actor: SCHEDULER_ACTOR,
        type: 'run.unscheduled',
        details: { reason: `${decision.reason}, and no later window in reach fits; an operator may apply it with a window override` },
        patch: { scheduledFor: null },
      });
      result.unscheduled.push(run.id);
    }
    return null;
  }

  async function runTick(now: Date): Promise<TickResult> {
    const result: TickResult = { started: [], rescheduled: [], unscheduled: [], interrupted: [], busy: [], rollbacks: [] };
    try {
      result.interrupted = await apply.reconcile({ expiredLeasesOnly: true });
    } catch (err) {
      log.error({ err }, 'scheduler sweep failed; retrying at the next tick');
    }
    try {
      if (rollbacks) result.rollbacks = await rollbacks.startDue(now);
    } catch (err) {
      log.error({ err }, 'scheduler could not start due rollbacks; retrying at the next tick');
    }
    if (running.size >= MAX_PARALLEL_APPLIES) return result;
    let due: Array<{ id: string }>;
    try {
      due = await rows<{ id: string }>(control, dueRuns(now, DUE_BATCH));
    } catch (err) {
      log.error({ err }, 'scheduler could not read due runs; retrying at the next tick');
      return result;
    }
    for (const { id } of due) {
      if (running.size >= MAX_PARALLEL_APPLIES) break;
      try {
        const started = await apply.start(id, SCHEDULER_ACTOR, {
          expect: ['scheduled'],
          claim: claimDueRun(id, now),
          gate: (client, run) => gate(client, run as LockedRun & ScheduleRow, now, result),
        });
        if (started.outcome === 'started') {
          result.started.push(id);
          const done = started.finished.finally(() => running.delete(done));
          running.add(done);
        } else if (started.outcome === 'busy') {
          result.busy.push(id);
        }
      } catch (err) {
        log.error({ err, runId: id }, 'scheduler could not start a due run; retrying at the next tick');
      }
    }
    if (result.started.length || result.rescheduled.length || result.unscheduled.length || result.rollbacks.length) log.info({ ...result, at: now.toISOString() }, 'scheduler tick');
    return result;
  }

  /** One tick at `now` (tests pass their own clock). Ticks of one process never overlap. */
  function tick(now: Date = new Date()): Promise<TickResult> {
    if (!ticking) ticking = runTick(now).finally(() => { ticking = null; });
    return ticking;
  }

  const cronLogger = {
    info: (msg: string) => log.debug({ component: 'node-cron' }, msg),
    warn: (msg: string) => log.warn({ component: 'node-cron' }, msg),
    error: (msg: string | Error, err?: Error) => log.error({ component: 'node-cron', err: err ?? msg }, 'node-cron error'),
    debug: (msg: string | Error) => log.debug({ component: 'node-cron' }, String(msg)),
  };

  return {
    tick,
    /** Starts ticking every SCHEDULER_TICK_SECONDS (nothing when SCHEDULER is off); idempotent. */
    start(): void {
      if (!config.scheduler || task) return;
      task = cron.schedule(tickExpression(config.schedulerTickSeconds), () => {
        tick().catch((err) => log.error({ err }, 'scheduler tick failed'));
      }, { name: 'starforge-scheduler', logger: cronLogger });
      log.info({ everySeconds: config.schedulerTickSeconds }, 'scheduler started');
    },
    /** Stops ticking and waits for a tick in progress; applies it started finish under the apply service. Idempotent. */
    async stop(): Promise<void> {
      const current = task;
      task = null;
      if (current) await current.destroy();
      await ticking?.catch(() => undefined);
    },
    /** Resolves when no tick and no apply this scheduler started is running. */
    async idle(): Promise<void> {
      while (ticking || running.size) {
        await ticking?.catch(() => undefined);
        await Promise.allSettled([...running]);
      }
    },
    get running(): boolean {
      return task !== null;
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
