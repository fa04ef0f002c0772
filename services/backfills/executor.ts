import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { closePool, createPool } from '../../database/db.js';
import { describeConnectionError } from '../../database/pg-errors.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { ServiceContext } from '../context.js';
import { claimJob } from './claim.js';
import { APPLICATION_NAME } from './executor-identity.js';
import { runJob } from './job-run.js';
import { describeError } from './pacing.js';
import { mirrorEvents, schemaExists } from './store.js';

/** How often an idle executor looks for claimable jobs. */
const POLL_MS = 1000;
/** How often the executor copies target audit events nobody copied yet (after a crash, or with the control DB down). */
const SWEEP_EVERY_MS = 30_000;

/**
 * The backfill executor: one loop per process (BACKFILLS on) that claims
 * jobs on every configured target and runs them batch by batch.
 *
 * Who runs a job is decided on the target: a claim takes the job row with
 * FOR UPDATE SKIP LOCKED among jobs whose lease lapsed, then writes this
 * process as lease owner; every batch transaction locks the job row again and
 * goes on only while this process still owns a running job, and renews the
 * lease in its checkpoint. So two processes never run one job at once, and a
 * process that died (kill -9) leaves a lease that lapses, after which
 * another process resumes from the last committed checkpoint.
 */
export function createBackfillExecutor(ctx: ServiceContext) {
  const { config, control, log, targets } = ctx;
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const leaseMs = config.backfillLeaseSeconds * 1000;
  const pools = new Map<string, pg.Pool>();
  const active = new Map<string, Promise<void>>();
  const lastProblem = new Map<string, string>();
  const lastSweep = new Map<string, number>();
  let controller: AbortController | null = null;
  let loop: Promise<void> | null = null;

  function poolOf(env: EnvironmentConfig): pg.Pool {
    let pool = pools.get(env.name);
    if (!pool) {
      pool = createPool(targets.url(env), {
        max: 3,
        applicationName: APPLICATION_NAME,
        onError: (err) => log.warn({ environment: env.name, reason: describeConnectionError(err) }, 'backfill: target connection lost'),
      });
      pools.set(env.name, pool);
    }
    return pool;
  }

  /** Logs a problem of an environment once, until it changes or clears. */
  function note(env: EnvironmentConfig, problem: string | null, err?: unknown): void {
    const previous = lastProblem.get(env.name) ?? null;
    if (previous === problem) return;
    if (problem === null) {
      lastProblem.delete(env.name);
      log.info({ environment: env.name }, 'backfill executor: target answers again');
      return;
    }
    lastProblem.set(env.name, problem);
    log.warn({ environment: env.name, reason: problem, ...(err ? { sqlstate: (err as { code?: string }).code } : {}) }, 'backfill executor: cannot work on this environment; retrying');
  }

  /** Copies this target's uncopied audit events to the control database (errors logged; the next sweep retries). */
  async function flush(env: EnvironmentConfig): Promise<void> {
    try {
      const client = await poolOf(env).connect();
      try {
        if (await schemaExists(client)) while ((await mirrorEvents(client, control)) > 0) { /* until none is left */ }
      } finally {
        client.release();
      }
      lastSweep.set(env.name, Date.now());
    } catch (err) {
      log.warn({ environment: env.name, reason: describeError(err).message }, 'backfill audit events not copied to the control database yet; retrying at the next sweep');
    }
  }

  // ---------------------------------------------------------------- the loop

  async function tick(signal: AbortSignal): Promise<void> {
    for (const env of Object.values(config.environments)) {
      if (signal.aborted) return;
      if (!targets.isConfigured(env.name)) continue;
      try {
        if (Date.now() - (lastSweep.get(env.name) ?? 0) > SWEEP_EVERY_MS) await flush(env);
        if (!active.has(env.name)) {
          const job = await claimJob(env, poolOf(env), owner, leaseMs);
          if (job) {
            await flush(env);
            const claimed = { env, pool: poolOf(env), job, owner, leaseMs, signal };
            const run = runJob(ctx, claimed, () => void flush(env)).finally(() => active.delete(env.name));
            active.set(env.name, run);
          }
        }
        note(env, null);
      } catch (err) {
        note(env, describeError(err).message, err);
      }
    }
  }

  async function run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await tick(signal);
      await sleep(POLL_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  return {
    owner,
    flush,
    /** Starts the loop (nothing when BACKFILLS is off); idempotent. */
    start(): void {
      if (!config.backfills || controller) return;
      controller = new AbortController();
      loop = run(controller.signal);
      log.info({ owner, leaseSeconds: config.backfillLeaseSeconds }, 'backfill executor started');
    },
    /** Stops claiming, lets each running job finish its batch and give its lease back, closes its pools. Idempotent. */
    async stop(): Promise<void> {
      controller?.abort();
      controller = null;
      await loop;
      loop = null;
      await Promise.allSettled([...active.values()]);
      const open = [...pools.values()];
      pools.clear();
      await Promise.all(open.map((p) => closePool(p).catch(() => undefined)));
    },
    /** Environments with a job executing in this process now. */
    executing(): string[] {
      return [...active.keys()];
    },
    get running(): boolean {
      return controller !== null;
    },
  };
}

export type BackfillExecutor = ReturnType<typeof createBackfillExecutor>;
