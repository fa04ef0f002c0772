import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { exec, one } from '../../../database/db.js';
import { holdsSchemaObjects, insertMigrationHistory } from '../../../database/sql/preflight.js';
import { diskSource } from '../../migrations/source.js';
import { runOne } from '../../migrations/run-one.js';
import { runPgTool, toolMajorVersion } from '../../pg-tools.js';
import { createEphemeralDatabase, withServer, type EphemeralDatabase } from '../ephemeral.js';
import { openSession } from './session.js';
import type { RehearsalInput, RehearsalResult } from './types.js';

/** The target's schema, dumped to `file` (custom format). */
async function dumpSchema(input: RehearsalInput, file: string): Promise<void> {
  await runPgTool('pg_dump', ['--schema-only', '--format=custom', '--no-owner', '--no-privileges', `--file=${file}`], input.targetUrl);
}

async function restoreSchema(input: RehearsalInput, file: string, databaseUrl: string): Promise<void> {
  await runPgTool('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', `--dbname=${new URL(databaseUrl).pathname.slice(1)}`, file], databaseUrl);
  // The dump holds the migrations table's shape; its rows make the clone's history the target's.
  if (input.applied.length) {
    const client = await openSession(databaseUrl);
    try {
      const table = `${client.escapeIdentifier(input.environment.migrationsSchema)}.${client.escapeIdentifier(input.environment.migrationsTable)}`;
      for (const m of input.applied) await exec(client, insertMigrationHistory(table, m.name, m.runOn));
    } finally {
      await client.end();
    }
  }
}

/**
 * A target with no history and nothing a schema dump would copy (a fresh
 * environment): its copy is the empty database as created, without a pg_dump
 * and pg_restore that would bring nothing. Any doubt (a read that fails, data
 * to copy for a data-bearing rehearsal) is not bare.
 */
async function bareTarget(input: RehearsalInput): Promise<boolean> {
  if (input.applied.length > 0 || input.environment.preflight.data !== 'schema') return false;
  return withServer(input.targetUrl, async (client) => !(await one<{ holds: boolean }>(client, holdsSchemaObjects())).holds).catch(() => false);
}

export interface Seeded {
  db: EphemeralDatabase;
  seededFrom: RehearsalResult['seededFrom'];
  seedNote: string | null;
}

/**
 * A throw-away database holding the target's schema: restored from pg_dump
 * --schema-only, or (no fitting pg_dump, or the restore failed) an empty one
 * on which replayHistory() later replays the applied migrations.
 */
export async function seedCopy(input: RehearsalInput): Promise<Seeded> {
  const dir = await mkdtemp(join(tmpdir(), 'sf-rehearsal-'));
  const file = join(dir, 'schema.dump');
  try {
    // The copy is created while the target's schema is dumped: neither waits for the other.
    const dumping = bareTarget(input).then(async (bare) => (bare ? 'bare' as const : toolMajorVersion('pg_dump'))).then(async (tool): Promise<{ tool: Awaited<ReturnType<typeof toolMajorVersion>> | 'bare'; failure: Error | null }> => {
      if (tool === 'bare' || !tool || tool.major < input.targetServerMajor) return { tool, failure: null };
      return dumpSchema(input, file).then(() => ({ tool, failure: null }), (err: Error) => ({ tool, failure: err }));
    });
    const [created, dumped] = await Promise.allSettled([input.copy?.created ?? createEphemeralDatabase(input.serverUrl, input.owner, input.runId), dumping]);
    if (created.status === 'rejected') throw created.reason;
    let db = created.value;
    // A failed dump is its `failure`; anything else thrown there leaves no copy behind.
    if (dumped.status === 'rejected') {
      await db.drop().catch(() => undefined);
      throw dumped.reason;
    }
    const { tool, failure } = dumped.value;
    if (tool === 'bare') return { db, seededFrom: 'empty', seedNote: null };
    if (!tool || tool.major < input.targetServerMajor) {
      return {
        db,
        seededFrom: 'replay',
        seedNote: tool
          ? `pg_dump ${tool.version} cannot dump a PostgreSQL ${input.targetServerMajor} server; replayed the applied history from an empty database instead.`
          : 'pg_dump is not available; replayed the applied history from an empty database instead.',
      };
    }
    const replayed = (err: Error) => `Copying the schema with pg_dump failed (${err.message}); replayed the applied history from an empty database instead.`;
    // Nothing was restored: the copy is still empty.
    if (failure) return { db, seededFrom: 'replay', seedNote: replayed(failure) };
    try {
      await restoreSchema(input, file, db.url);
      return { db, seededFrom: 'pg_dump', seedNote: null };
    } catch (err) {
      // A half-restored copy is useless: start again from an empty database.
      await db.drop();
      db = await createEphemeralDatabase(input.serverUrl, input.owner, input.runId);
      return { db, seededFrom: 'replay', seedNote: replayed(err as Error) };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The target's history, not approved content: replayed from the directory as it is. `onStep` sees each migration's SQL. */
export async function replayHistory(client: pg.ClientBase, input: RehearsalInput, secrets: string[], onStep: (migration: string, statements: string[]) => Promise<void>): Promise<void> {
  const history = diskSource(input.environment.migrationsDir);
  for (const m of input.applied) {
    const outcome = await runOne(client, input.environment, 'up', { secrets, source: history });
    await onStep(outcome.migration || m.name, outcome.statements);
    if (outcome.error) throw new Error(`replaying the applied migration ${m.name} failed: ${outcome.error.message}`);
  }
}
