import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { scrubSecrets } from '../../database/pg-errors.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { compareMigrationNames } from './files.js';
import { hookedLoaders } from './hooked-loaders.js';
import { MigrationChangedError } from './loader.js';
import { readAppliedMigrations } from './pending.js';
import type { MigrationSource } from './source.js';

const MARKER = /^### MIGRATION (.+) \((UP|DOWN)\) ###$/;
// Logged right after the marker for a pgm.noTransaction() migration.
const NOT_WRAPPED = /not wrapped in a transaction/;

export interface StepOutcome {
  /** The migration node-pg-migrate ran ('' when it failed before choosing one). */
  migration: string;
  durationMs: number;
  /** The SQL the migration sent, node-pg-migrate's BEGIN/COMMIT and bookkeeping removed. */
  statements: string[];
  transactional: boolean;
  error: {
    message: string;
    sqlState: string | null;
    statement: string | null;
    /** The file's bytes no longer match the digest preflight checked; nothing ran. */
    contentChanged: boolean;
  } | null;
}

export interface RunOneOptions {
  secrets: string[];
  /** What node-pg-migrate reads: a sealed snapshot (snapshot.ts) or a directory on disk (source.ts). */
  source: MigrationSource;
  /**
   * Called as the runner starts each migration (its marker), before its first statement;
   * `previousTransactional` tells whether the one before it (now committed) ran in a transaction.
   */
  onStart?: (migration: string, previousTransactional: boolean | null) => void;
  /**
   * Awaited between two migrations of the batch, before `next` sends anything
   * and after `previous` (its outcome; null before the first) committed. It
   * may query the same session: nothing it sends is captured. It may return
   * work that goes on meanwhile on other sessions, reading what is committed:
   * that is awaited before `next` sends its first statement (while `next`'s
   * function builds its steps), so it reads the schema as `next` found it and
   * never waits for a lock `next` holds. A throw (or a
   * rejected background) stops the batch and is thrown from runMigrations as it is.
   */
  between?: (next: string, previous: StepOutcome | null) => Promise<{ background?: Promise<unknown> } | void>;
}

/** A `between` hook failed: not the migration's error. */
class HookFailed extends Error {
  constructor(readonly original: unknown) {
    super('rehearsal hook failed');
  }
}

// node-pg-migrate's own refusals, thrown before the migration's function runs: they name it.
const REFUSAL = [/disabled (?:up|down) migration on file: (.+)$/, /Is the migration (.+) exporting a '(?:up|down)' function\?/];
const refusedMigration = (message: string) => REFUSAL.map((re) => re.exec(message)?.[1]).find((name) => name !== undefined) ?? null;

/**
 * node-pg-migrate's checkOrder for a sealed source, whose directory holds only
 * the run's migrations: refuses to run one that sorts before a migration the
 * target already has (another tool applied something since the drift check).
 */
async function sealedOrderProblem(client: pg.ClientBase, env: EnvironmentConfig, sealed: string[]): Promise<string | null> {
  const applied = (await readAppliedMigrations(client, env)).map((a) => a.name);
  const next = sealed.find((name) => !applied.includes(name));
  if (next === undefined) return null;
  const later = applied.filter((name) => compareMigrationNames(name, next) >= 0);
  return later.length ? `Not run migration ${next} would run after already applied migration ${later[later.length - 1]}; the target changed since the drift check.` : null;
}

export interface RunManyResult {
  /** The migrations that completed, in order. */
  completed: StepOutcome[];
  /** The migration that failed (its error set), or null. */
  failed: StepOutcome | null;
}

/**
 * Runs the next `count` migrations in `direction` with one node-pg-migrate
 * runner call on `client`, capturing exactly the SQL each sends: the runner
 * logs a marker right before a migration's steps, which splits the captured
 * queries per migration. One call for the whole set keeps the runner's fixed
 * cost (listing, loading and hashing files, reading history) out of every
 * migration. A failed transactional migration is rolled back here; the ones
 * before it stay committed. The caller holds whatever lock it needs.
 */
export async function runMigrations(client: pg.ClientBase, env: EnvironmentConfig, direction: 'up' | 'down', count: number, opts: RunOneOptions): Promise<RunManyResult> {
  // node-pg-migrate reads a down count of 0 as "all of them" (slice(-0)).
  if (count <= 0) return { completed: [], failed: null };
  const captured: string[] = [];
  // By position, not by text: a `pgm.sql('BEGIN')` of the migration's own looks exactly like node-pg-migrate's
  // "BEGIN;", and linting must see it. node-pg-migrate wraps a transactional migration's steps in BEGIN; ... COMMIT;
  // and logs NOT_WRAPPED for the others.
  // index: where node-pg-migrate's own steps start (its BEGIN); from: where the migration's function started,
  // earlier when the function itself sent queries (pgm.db.query) while it built its steps.
  const markers: Array<{ name: string; index: number; from: number; at: number; end?: number; transactional: boolean }> = [];
  // The migration whose function the runner called last: it may fail before logging its marker.
  const run: { starting: { name: string; index: number; at: number } | null } = { starting: null };
  // The `between` hook's background work.
  let background: Promise<unknown> | null = null;
  const settle = async () => {
    const pending = background;
    background = null;
    if (!pending) return;
    try {
      await pending;
    } catch (err) {
      throw new HookFailed(err);
    }
  };
  const capturing = {
    query: async (text: string | pg.QueryConfig, values?: unknown[]) => {
      // Before the migration's first statement (its BEGIN, or a query its function sends itself): once it holds a
      // lock, a catalog read on another session can queue behind it (pg_get_constraintdef opens the table), and
      // its COMMIT would wait for that read: a deadlock no server sees.
      if (background) {
        const waitStarted = performance.now();
        await settle();
        // The wait is the hook's, not the migration's: its clock starts after it.
        const waited = performance.now() - waitStarted;
        if (run.starting) run.starting.at += waited;
        const marker = markers[markers.length - 1];
        if (marker && marker.name === run.starting?.name) marker.at += waited;
      }
      captured.push(typeof text === 'string' ? text : text.text);
      return client.query(text as string, values);
    },
  };
  const logger = {
    info: (msg: string) => {
      const match = MARKER.exec(String(msg).trim());
      if (match) {
        const previous = markers[markers.length - 1];
        const began = run.starting?.name === match[1] ? run.starting : null;
        markers.push({ name: match[1]!, index: captured.length, from: began?.index ?? captured.length, at: began?.at ?? performance.now(), transactional: true });
        opts.onStart?.(match[1]!, previous ? previous.transactional : null);
      }
    },
    warn: (msg: string) => {
      const current = markers[markers.length - 1];
      if (current && captured.length === current.index && NOT_WRAPPED.test(String(msg))) current.transactional = false;
    },
    error: () => undefined,
  };
  const outcomeAt = (i: number, failure: StepOutcome['error'], now: number): StepOutcome => {
    const marker = markers[i]!;
    const next = markers[i + 1];
    const direct = captured.slice(marker.from, marker.index);
    const steps = captured.slice(marker.index, next ? next.from : captured.length);
    const body = steps.slice(marker.transactional ? 1 : 0);
    // The last steps are node-pg-migrate marking the migration as run (or unrun), then its COMMIT.
    if (!failure && marker.transactional && body.length) body.pop();
    if (!failure && body.length) body.pop();
    return {
      migration: marker.name,
      durationMs: Math.round(((marker.end ?? next?.at ?? now) - marker.at) * 10) / 10,
      statements: [...direct, ...body].map((s) => s.trim()),
      transactional: marker.transactional,
      error: failure,
    };
  };
  const loaders = hookedLoaders(opts.source.loaders, {
    starting: async (name) => {
      const previous = markers[markers.length - 1];
      if (previous && previous.end === undefined) previous.end = performance.now();
      if (opts.between) {
        await settle();
        try {
          const started = await opts.between(name, previous ? outcomeAt(markers.length - 1, null, performance.now()) : null);
          if (started?.background) {
            background = started.background;
            // Handled from now on (settle awaits it): a rejection before then must not count as unhandled.
            background.catch(() => undefined);
          }
        } catch (err) {
          throw new HookFailed(err);
        }
      }
      // After the hook: its time is neither migration's.
      run.starting = { name, index: captured.length, at: performance.now() };
    },
  });
  let error: StepOutcome['error'] = null;
  try {
    // Right before the runner reads them: the files still have the bytes they were sealed with.
    await opts.source.verify();
    if (opts.source.sealed && direction === 'up') {
      const problem = await sealedOrderProblem(client, env, opts.source.sealed);
      if (problem) throw new Error(problem);
    }
    await runner({
      dbClient: capturing as unknown as pg.ClientBase,
      dir: opts.source.dir,
      migrationsTable: env.migrationsTable,
      migrationsSchema: env.migrationsSchema,
      direction,
      count,
      singleTransaction: false,
      noLock: true,
      checkOrder: opts.source.sealed === null,
      logger,
      migrationLoaderStrategies: loaders,
    });
  } catch (caught) {
    const hook = caught instanceof HookFailed ? caught : (caught as Error).cause instanceof HookFailed ? (caught as Error).cause as HookFailed : null;
    if (hook) {
      // It may have stopped a migration inside its transaction.
      await client.query('ROLLBACK').catch(() => undefined);
      throw hook.original;
    }
    const err = caught;
    const e = err as pg.DatabaseError;
    const refused = refusedMigration(String(e.message ?? ''));
    if (refused !== null && refused !== run.starting?.name) run.starting = { name: refused, index: captured.length, at: performance.now() };
    error = {
      message: scrubSecrets(e.message ?? String(err), opts.secrets),
      sqlState: typeof e.code === 'string' ? e.code : null,
      statement: null,
      // node-pg-migrate wraps loader errors ("Error loading migration files") with the original as cause.
      contentChanged: err instanceof MigrationChangedError || (err as Error).cause instanceof MigrationChangedError,
    };
    await client.query('ROLLBACK').catch(() => undefined);
  }
  const ended = performance.now();
  // What the last hook started: a failed migration did not wait for it.
  await settle().catch((err: HookFailed) => {
    throw err.original;
  });
  const last = markers[markers.length - 1];
  const starting = run.starting;
  if (error && starting !== null && starting.name !== last?.name) {
    // Its function threw, or node-pg-migrate refused it, before node-pg-migrate ran its steps.
    markers.push({ name: starting.name, index: captured.length, from: starting.index, at: starting.at, end: ended, transactional: true });
  }
  const failing = markers[markers.length - 1];
  // The statement it failed on: the last one it sent, if it sent any.
  if (error && failing && captured.length > failing.from) error.statement = captured[captured.length - 1]!.trim().slice(0, 2000);
  const outcomes: StepOutcome[] = markers.map((_, i) => outcomeAt(i, error !== null && i === markers.length - 1 ? error : null, ended));
  if (error && (outcomes.length === 0 || outcomes[outcomes.length - 1]!.error === null)) {
    // It failed before any migration started (loading files, reading history).
    return { completed: outcomes, failed: { migration: '', durationMs: 0, statements: [], transactional: true, error } };
  }
  return { completed: outcomes.filter((o) => !o.error), failed: outcomes.find((o) => o.error) ?? null };
}

/** Runs the next single migration (see runMigrations). */
export async function runOne(client: pg.ClientBase, env: EnvironmentConfig, direction: 'up' | 'down', opts: RunOneOptions): Promise<StepOutcome> {
  const { completed, failed } = await runMigrations(client, env, direction, 1, opts);
  return failed ?? completed[0] ?? { migration: '', durationMs: 0, statements: [], transactional: true, error: null };
}
