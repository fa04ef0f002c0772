import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { scrubSecrets } from '../../database/pg-errors.js';
import type { EnvironmentConfig } from '../../src/config/environments.js';
import { MigrationChangedError, type verifiedLoaders } from './loader.js';

const MARKER = /^### MIGRATION (.+) \((UP|DOWN)\) ###$/;
const BOOKKEEPING = /^(BEGIN|COMMIT);?$/i;

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
  loaders: ReturnType<typeof verifiedLoaders>;
}

/**
 * Runs the next migration in `direction` with node-pg-migrate on `client`,
 * capturing exactly the SQL it sends (the runner logs a marker right before a
 * migration's steps). A failed transactional migration is rolled back here.
 * The caller holds whatever lock it needs: node-pg-migrate's own is disabled.
 */
export async function runOne(client: pg.ClientBase, env: EnvironmentConfig, direction: 'up' | 'down', opts: RunOneOptions): Promise<StepOutcome> {
  const captured: string[] = [];
  let marker = -1;
  let markedAt = 0;
  let name = '';
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
        name = match[1]!;
        marker = captured.length;
        markedAt = performance.now();
      }
    },
    warn: () => undefined,
    error: () => undefined,
  };
  let error: StepOutcome['error'] = null;
  try {
    await runner({
      dbClient: capturing as unknown as pg.ClientBase,
      dir: env.migrationsDir,
      migrationsTable: env.migrationsTable,
      migrationsSchema: env.migrationsSchema,
      direction,
      count: 1,
      singleTransaction: false,
      noLock: true,
      checkOrder: true,
      logger,
      migrationLoaderStrategies: opts.loaders,
    });
  } catch (err) {
    const e = err as pg.DatabaseError;
    error = {
      message: scrubSecrets(e.message ?? String(err), opts.secrets),
      sqlState: typeof e.code === 'string' ? e.code : null,
      statement: marker >= 0 && captured.length > marker ? captured[captured.length - 1]!.trim().slice(0, 2000) : null,
      // node-pg-migrate wraps loader errors ("Error loading migration files") with the original as cause.
      contentChanged: err instanceof MigrationChangedError || (err as Error).cause instanceof MigrationChangedError,
    };
    await client.query('ROLLBACK').catch(() => undefined);
  }
  const durationMs = markedAt ? performance.now() - markedAt : 0;
  const steps = marker >= 0 ? captured.slice(marker) : [];
  const transactional = steps[0] !== undefined && BOOKKEEPING.test(steps[0].trim());
  // The last step is node-pg-migrate marking the migration as run (or unrun).
  const body = steps.filter((s) => !BOOKKEEPING.test(s.trim()));
  if (!error && body.length) body.pop();
  return { migration: name, durationMs: Math.round(durationMs * 10) / 10, statements: body.map((s) => s.trim()), transactional, error };
}
