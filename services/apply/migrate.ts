import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { maybeOne, one, rows } from '../../database/db.js';
import { scrubSecrets } from '../../database/pg-errors.js';
import { LOCK_NOT_AVAILABLE } from '../../database/pg-errors.js';
import { invalidIndexes, releaseMigrationLock, setSessionTimeouts, tryMigrationLock } from '../../database/sql/apply-target.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { runMigrations } from '../migrations/run-one.js';
import type { MigrationSource, SourceOpener } from '../migrations/source.js';
import { backendPid } from '../../database/sql/blockers.js';
import { describeBlocker, watchBlockers, type Blocker, type BlockerWatch, type LockWait, type StatementProgress } from './blockers.js';
import { nextRetryDelay, sleep, type RetryBudget } from './lock-retry.js';

export interface MigrationToRun {
  name: string;
  sha256: string;
}

export interface AppliedStep {
  name: string;
  sha256: string;
  durationMs: number;
  attempts: number;
  transactional: boolean;
}

export interface MigrateFailure {
  code: 'lock-timeout' | 'migration-failed' | 'migration-lock-busy' | 'content-changed' | 'unexpected-migration';
  migration: string | null;
  statement: string | null;
  sqlState: string | null;
  message: string;
  transactional: boolean;
  /** For a failed non-transactional migration: what may have landed (e.g. INVALID indexes). */
  partial: string[] | null;
  /** lock-timeout: the sessions the last attempt waited for. */
  blockers?: Blocker[];
}

export interface MigrateResult {
  steps: AppliedStep[];
  lockRetries: number;
  failure: MigrateFailure | null;
}

export interface MigrateOptions {
  environment: EnvironmentConfig;
  targetUrl: string;
  direction: 'up' | 'down';
  /** Exactly these migrations, in the order they must run (newest first for down). */
  migrations: MigrationToRun[];
  /**
   * Where they are read from: the run's sealed snapshot (services/migrations/snapshot.ts
   * sealedSnapshot), opened once the migration lock is held and closed when done.
   */
  source: SourceOpener;
  budget: RetryBudget;
  /** How long to poll for node-pg-migrate's lock before giving up. */
  lockWaitMs?: number;
  log: (line: string) => void;
  /** Called as each migration commits (ledger, audit), in order; the runner does not wait for it. */
  onStep?: (step: AppliedStep) => Promise<void>;
  /** Called as each migration starts (before its first statement); awaited in order with onStep. */
  onStarted?: (position: { migration: string; attempt: number; index: number; total: number }) => Promise<void>;
  /** Samples of the running statement's progress (index builds, CLUSTER/VACUUM FULL); null when it reports none. */
  onProgress?: (progress: StatementProgress | null) => void;
  /** Called for each lock timeout (retried or final) with the sessions it waited for. */
  onLockWait?: (wait: LockWait & { migration: string; attempt: number; retryInMs: number | null }) => Promise<void>;
  /** The session's name on the target (default starforge-apply); per run, so a reconciler can find it. */
  applicationName?: string;
}

/**
 * Applies (or reverts) migrations one at a time on a dedicated connection
 * with lock_timeout and statement_timeout always set. A lock timeout (55P03)
 * in a transactional migration rolls it back and retries after a jittered
 * backoff while the budget lasts; it never retries without the timeout.
 */
export async function migrate(opts: MigrateOptions): Promise<MigrateResult> {
  const { environment: env, direction } = opts;
  const client = new pg.Client({ connectionString: opts.targetUrl, application_name: opts.applicationName ?? 'starforge-apply' });
  // The target going away must fail the statement in flight, not crash the process (pg also emits 'error').
  client.on('error', () => undefined);
  const secrets = [opts.targetUrl];
  const steps: AppliedStep[] = [];
  let lockRetries = 0;
  await client.connect();
  let locked = false;
  let source: MigrationSource | null = null;
  let watch: BlockerWatch | null = null;
  try {
    await one(client, setSessionTimeouts(env.lockTimeoutMs, env.statementTimeoutMs));
    const { pid } = await one<{ pid: number }>(client, backendPid());
    watch = await watchBlockers({ targetUrl: opts.targetUrl, pid, lockTimeoutMs: env.lockTimeoutMs, cancelAfterMs: env.lockRetries.cancelBlockersAfterMs, secrets, log: opts.log, onProgress: opts.onProgress });
    // Poll rather than block: a session blocked on an advisory lock can
    // deadlock with CREATE INDEX CONCURRENTLY waiting for it to finish.
    const lockDeadline = Date.now() + (opts.lockWaitMs ?? 30_000);
    for (;;) {
      locked = (await one<{ locked: boolean }>(client, tryMigrationLock())).locked;
      if (locked) break;
      if (Date.now() > lockDeadline) {
        return { steps, lockRetries, failure: { code: 'migration-lock-busy', migration: null, statement: null, sqlState: null, transactional: true, partial: null, message: 'Another migration holds the node-pg-migrate lock on the target; nothing was run.' } };
      }
      await sleep(250);
    }
    opts.log(`migration lock taken; lock_timeout ${env.lockTimeoutMs} ms, statement_timeout ${env.statementTimeoutMs} ms`);

    try {
      source = await opts.source();
    } catch (err) {
      return { steps, lockRetries, failure: { code: 'content-changed', migration: null, statement: null, sqlState: null, transactional: true, partial: null, message: scrubSecrets((err as Error).message, secrets) } };
    }
    opts.log(`migrations read from ${source.sealed ? 'the run-private copy of the sealed snapshot' : 'the directory'} ${source.dir}`);
    // One runner call for everything left; after a lock-timeout retry, one for the rest.
    // Each migration is reported (ledger, audit) as it commits: the runner logs the next
    // migration's marker only after the previous one's COMMIT. The last one of a call is
    // reported when the call returns. (After a crash, reconciliation reads the target's
    // migrations table, which is always exact.)
    let index = 0;
    let attempt = 1;
    let live: Promise<void> = Promise.resolve();
    let liveError: unknown = null;
    const report = (step: AppliedStep) => {
      steps.push(step);
      opts.log(`${direction === 'up' ? 'applied' : 'reverted'} ${step.name} in ${step.durationMs} ms${step.attempts > 1 ? ` after ${step.attempts} attempts` : ''}`);
      live = live.then(() => opts.onStep?.(step)).catch((err) => { liveError ??= err; });
    };
    while (index < opts.migrations.length) {
      let started: { name: string; at: number } | null = null;
      let reported = 0;
      const onStart = (name: string, previousTransactional: boolean | null) => {
        watch?.take();
        const at = performance.now();
        const previous = started;
        started = { name, at };
        if (previous && previous.name === opts.migrations[index]?.name) {
          const expected = opts.migrations[index]!;
          report({ name: expected.name, sha256: expected.sha256, durationMs: Math.round((at - previous.at) * 10) / 10, attempts: attempt, transactional: previousTransactional ?? true });
          index += 1;
          reported += 1;
          attempt = 1;
        }
        if (opts.onStarted) {
          const position = { migration: name, attempt, index, total: opts.migrations.length };
          live = live.then(() => opts.onStarted?.(position)).catch((err) => { liveError ??= err; });
        }
      };
      const { completed, failed } = await runMigrations(client, env, direction, opts.migrations.length - index, { secrets, source, onStart });
      await live;
      if (liveError) throw liveError;
      for (const outcome of completed.slice(reported)) {
        const expected = opts.migrations[index]!;
        if (outcome.migration !== expected.name) {
          // Never expected: the drift check ran before. Stop rather than guess.
          return { steps, lockRetries, failure: { code: 'unexpected-migration', migration: outcome.migration, statement: null, sqlState: null, transactional: outcome.transactional, partial: null, message: `node-pg-migrate ran ${outcome.migration} where ${expected.name} was expected; stopped.` } };
        }
        report({ name: expected.name, sha256: expected.sha256, durationMs: outcome.durationMs, attempts: attempt, transactional: outcome.transactional });
        index += 1;
        attempt = 1;
      }
      await live;
      if (liveError) throw liveError;
      if (!failed) {
        if (index < opts.migrations.length) {
          return { steps, lockRetries, failure: { code: 'unexpected-migration', migration: opts.migrations[index]!.name, statement: null, sqlState: null, transactional: true, partial: null, message: `node-pg-migrate found nothing to run where ${opts.migrations[index]!.name} was expected; stopped.` } };
        }
        break;
      }
      const expected = opts.migrations[index]!;
      const error = failed.error!;
      if (error.contentChanged) {
        return { steps, lockRetries, failure: { code: 'content-changed', migration: expected.name, statement: null, sqlState: null, transactional: true, partial: null, message: error.message } };
      }
      if (failed.migration && failed.migration !== expected.name) {
        return { steps, lockRetries, failure: { code: 'unexpected-migration', migration: failed.migration, statement: error.statement, sqlState: error.sqlState, transactional: failed.transactional, partial: null, message: `node-pg-migrate ran ${failed.migration} where ${expected.name} was expected: ${error.message}` } };
      }
      if (error.sqlState === LOCK_NOT_AVAILABLE && failed.transactional) {
        const delay = nextRetryDelay(attempt, opts.budget);
        const wait = watch.take();
        const named = wait.blockers.length ? `; blocked by ${wait.blockers.map(describeBlocker).join('; ')}` : '; no blocking session was seen';
        await opts.onLockWait?.({ ...wait, migration: expected.name, attempt, retryInMs: delay });
        if (delay !== null) {
          lockRetries += 1;
          opts.log(`${expected.name}: lock not available within ${env.lockTimeoutMs} ms (attempt ${attempt})${named}; rolled back, retrying in ${delay} ms`);
          attempt += 1;
          await sleep(delay);
          continue;
        }
        opts.log(`${expected.name}: lock not available${named}; retry budget exhausted after ${attempt} attempts`);
        return { steps, lockRetries, failure: { code: 'lock-timeout', migration: expected.name, statement: error.statement, sqlState: error.sqlState, transactional: true, partial: null, blockers: wait.blockers, message: `Could not get the locks ${expected.name} needs within ${env.lockTimeoutMs} ms in ${attempt} attempts; the migration was rolled back each time${named}.` } };
      }
      let partial: string[] | null = null;
      if (!failed.transactional) {
        const invalid = await rows<{ index: string; table: string }>(client, invalidIndexes());
        partial = [
          'the migration ran outside a transaction: statements before the failing one stay applied',
          ...invalid.map((i) => `INVALID index ${i.index} on ${i.table} (left by a failed CONCURRENTLY build; drop it before retrying)`),
        ];
      }
      opts.log(`${expected.name} failed: ${error.message}${error.sqlState ? ` (SQLSTATE ${error.sqlState})` : ''}`);
      return {
        steps,
        lockRetries,
        failure: {
          code: error.sqlState === LOCK_NOT_AVAILABLE ? 'lock-timeout' : 'migration-failed',
          migration: expected.name,
          statement: error.statement,
          sqlState: error.sqlState,
          transactional: failed.transactional,
          partial,
          message: error.message,
        },
      };
    }
    return { steps, lockRetries, failure: null };
  } finally {
    await watch?.stop();
    await source?.close().catch(() => undefined);
    if (locked) await maybeOne(client, releaseMigrationLock()).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
