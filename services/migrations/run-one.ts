import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { scrubSecrets } from '../../database/pg-errors.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { compareMigrationNames } from './files.js';
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
}

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
  const captured: string[] = [];
  // By position, not by text: a `pgm.sql('BEGIN')` of the migration's own looks exactly like node-pg-migrate's
  // "BEGIN;", and linting must see it. node-pg-migrate wraps a transactional migration's steps in BEGIN; ... COMMIT;
  // and logs NOT_WRAPPED for the others.
  const markers: Array<{ name: string; index: number; at: number; transactional: boolean }> = [];
  const capturing = {
    query: (text: string | pg.QueryConfig, values?: unknown[]) => {
      captured.push(typeof text === 'string' ? text : text.text);
      return client.query(text as string, values);
    },
  };
  const logger = {
    info: (msg: string) => {
      const match = MARKER.exec(String(msg).trim());
      if (match) {
        const previous = markers[markers.length - 1];
        markers.push({ name: match[1]!, index: captured.length, at: performance.now(), transactional: true });
        opts.onStart?.(match[1]!, previous ? previous.transactional : null);
      }
    },
    warn: (msg: string) => {
      const current = markers[markers.length - 1];
      if (current && captured.length === current.index && NOT_WRAPPED.test(String(msg))) current.transactional = false;
    },
    error: () => undefined,
  };
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
      migrationLoaderStrategies: opts.source.loaders,
    });
  } catch (err) {
    const e = err as pg.DatabaseError;
    const last = markers[markers.length - 1];
    error = {
      message: scrubSecrets(e.message ?? String(err), opts.secrets),
      sqlState: typeof e.code === 'string' ? e.code : null,
      statement: last && captured.length > last.index ? captured[captured.length - 1]!.trim().slice(0, 2000) : null,
      // node-pg-migrate wraps loader errors ("Error loading migration files") with the original as cause.
      contentChanged: err instanceof MigrationChangedError || (err as Error).cause instanceof MigrationChangedError,
    };
    await client.query('ROLLBACK').catch(() => undefined);
  }
  const ended = performance.now();
  const outcomes: StepOutcome[] = markers.map((marker, i) => {
    const next = markers[i + 1];
    const steps = captured.slice(marker.index, next ? next.index : captured.length);
    const failed = error !== null && !next;
    const body = steps.slice(marker.transactional ? 1 : 0);
    // The last steps are node-pg-migrate marking the migration as run (or unrun), then its COMMIT.
    if (!failed && marker.transactional && body.length) body.pop();
    if (!failed && body.length) body.pop();
    return {
      migration: marker.name,
      durationMs: Math.round(((next ? next.at : ended) - marker.at) * 10) / 10,
      statements: body.map((s) => s.trim()),
      transactional: marker.transactional,
      error: failed ? error : null,
    };
  });
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
