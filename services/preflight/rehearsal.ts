import { performance } from 'node:perf_hooks';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { exec, rows } from '../../database/db.js';
import { insertMigrationHistory, userIndexes, userTables } from '../../database/sql/preflight.js';
import type { EnvironmentConfig } from '../environments/model.js';
import type { AppliedMigration } from '../migrations/pending.js';
import { runPgTool, toolMajorVersion } from '../pg-tools.js';
import { runOne, type StepOutcome } from '../migrations/run-one.js';
import { diskSource, type MigrationSource } from '../migrations/source.js';
import { smokeEtl, type SmokeOutcome } from '../etl/smoke.js';
import { createEphemeralDatabase } from './ephemeral.js';
import { readSchemaFacts } from './catalog-facts.js';
// From the observer's own modules, not the index: the index also re-exports the judge, which reads report types that read ours.
import { beginObserved, collectObserved, installObserver } from './observe/install.js';
import type { Observation } from './observe/types.js';
import type { SchemaFacts } from './sql-analysis/schema-facts.js';
// data-bearing rehearsal (issue 18)
import type { BackupRecord } from '../apply/backup.js';
import { seedData, type DataRehearsal, type DataRehearsalResult } from './data-rehearsal/index.js';

export type Phase = 'up' | 'down' | 'up-again';

export interface RehearsalStep {
  phase: Phase;
  migration: string;
  durationMs: number;
  ok: boolean;
  error: StepOutcome['error'];
}

export interface MigrationTrace {
  /** The SQL the migration ran, in order (node-pg-migrate's own bookkeeping removed). */
  statements: string[];
  transactional: boolean;
  /** Tables ('schema.table') that existed before this migration ran. */
  tablesBefore: string[];
  /** The catalog facts the linter needs (column types, NOT NULL checks, function volatility), read before this migration ran. */
  factsBefore?: SchemaFacts;
  /** What the migration was seen doing on the copy (locks, rewrites, scans, drops). */
  observed?: Observation;
}

export interface SchemaChange {
  tables: string[];
  indexes: string[];
}

export interface RehearsalResult {
  database: string;
  /** What the pending migrations create and drop ('schema.name'): what verification expects on the target. */
  created: SchemaChange;
  dropped: SchemaChange;
  /** How the throw-away database was brought to the target's state. */
  seededFrom: 'pg_dump' | 'replay';
  seedNote: string | null;
  steps: RehearsalStep[];
  traces: Record<string, MigrationTrace>;
  /** The SQL each down migration ran on the copy, by migration: what a rollback plan shows (services/rollback-plan). */
  downStatements: Record<string, string[]>;
  failed: RehearsalStep | null;
  /** The smoke ETL run on the copy after up, down, up (null: not run). */
  smoke: SmokeOutcome | null;
  durationMs: number;
  /** data-bearing rehearsal (issue 18): the copy's rows and the UP phase timed on them (null: preflight.data is 'schema'). */
  data: DataRehearsalResult | null;
}

export interface RehearsalInput {
  runId: string;
  environment: EnvironmentConfig;
  targetUrl: string;
  targetServerMajor: number;
  serverUrl: string;
  /** ownerTag() of the control database, part of the throw-away database's name. */
  owner: string;
  applied: AppliedMigration[];
  pending: string[];
  /** The pending migrations' sealed snapshot (services/migrations/snapshot.ts): the only bytes the rehearsal runs. */
  source: MigrationSource;
  /** data-bearing rehearsal (issue 18): for preflight.data 'full', the environment's latest verified pg_dump backup. */
  latestBackup?: BackupRecord | null;
}

async function seedFromDump(input: RehearsalInput, databaseUrl: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sf-rehearsal-'));
  try {
    const file = join(dir, 'schema.dump');
    await runPgTool('pg_dump', ['--schema-only', '--format=custom', '--no-owner', '--no-privileges', `--file=${file}`], input.targetUrl);
    await runPgTool('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', `--dbname=${new URL(databaseUrl).pathname.slice(1)}`, file], databaseUrl);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // The dump holds the migrations table's shape; its rows make the clone's history the target's.
  if (input.applied.length) {
    const client = new pg.Client({ connectionString: databaseUrl });
    client.on('error', () => undefined); // the query in flight reports a lost server; pg's 'error' event must not crash the process
    await client.connect();
    try {
      const table = `${client.escapeIdentifier(input.environment.migrationsSchema)}.${client.escapeIdentifier(input.environment.migrationsTable)}`;
      for (const m of input.applied) await exec(client, insertMigrationHistory(table, m.name, m.runOn));
    } finally {
      await client.end();
    }
  }
}

/**
 * Rehearses the pending migrations on a throw-away copy of the target's schema:
 * up, down, up again. The target is only read (pg_dump --schema-only); the copy
 * is dropped whatever happens.
 */
export async function rehearse(input: RehearsalInput): Promise<RehearsalResult> {
  const started = performance.now();
  const secrets = [input.targetUrl, input.serverUrl];
  const source = input.source;
  let db = await createEphemeralDatabase(input.serverUrl, input.owner, input.runId);
  try {
    let seededFrom: RehearsalResult['seededFrom'] = 'pg_dump';
    let seedNote: string | null = null;
    const dump = await toolMajorVersion('pg_dump');
    if (!dump || dump.major < input.targetServerMajor) {
      seededFrom = 'replay';
      seedNote = dump
        ? `pg_dump ${dump.version} cannot dump a PostgreSQL ${input.targetServerMajor} server; replayed the applied history from an empty database instead.`
        : 'pg_dump is not available; replayed the applied history from an empty database instead.';
    } else {
      try {
        await seedFromDump(input, db.url);
      } catch (err) {
        // A half-restored copy is useless: start again from an empty database.
        await db.drop();
        db = await createEphemeralDatabase(input.serverUrl, input.owner, input.runId);
        seededFrom = 'replay';
        seedNote = `Copying the schema with pg_dump failed (${(err as Error).message}); replayed the applied history from an empty database instead.`;
      }
    }
    // data-bearing rehearsal (issue 18): the target's rows into the copy, before the observer is installed.
    const data: DataRehearsal | null = input.environment.preflight.data === 'schema' ? null : await seedData({
      environment: input.environment, targetUrl: input.targetUrl, databaseUrl: db.url, schemaFrom: seededFrom,
      applied: input.applied.map((m) => m.name), latestBackup: input.latestBackup, secrets,
    });
    const client = new pg.Client({ connectionString: db.url, application_name: 'starforge-rehearsal' });
    client.on('error', () => undefined); // the query in flight reports a lost server; pg's 'error' event must not crash the process
    await client.connect();
    const steps: RehearsalStep[] = [];
    const traces: Record<string, MigrationTrace> = {};
    const created: SchemaChange = { tables: [], indexes: [] };
    let smoke: SmokeOutcome | null = null;
    const dropped: SchemaChange = { tables: [], indexes: [] };
    const downStatements: Record<string, string[]> = {};
    const run = async (phase: Phase, direction: 'up' | 'down', expected: string): Promise<boolean> => {
      // data-bearing rehearsal (issue 18): the re-applied up is timed too; the lower time of the two ups is what gets scaled.
      const outcome = data && phase === 'up-again'
        ? await data.measure(expected, client, (timed) => runOne(timed, input.environment, direction, { secrets, source }), true)
        : await runOne(client, input.environment, direction, { secrets, source });
      steps.push({ phase, migration: outcome.migration || expected, durationMs: outcome.durationMs, ok: !outcome.error, error: outcome.error });
      if (phase === 'down') downStatements[outcome.migration || expected] = outcome.statements;
      return outcome.error === null;
    };
    try {
      if (seededFrom === 'replay') {
        // The target's history, not approved content: replayed from the directory as it is.
        const history = diskSource(input.environment.migrationsDir);
        for (const m of input.applied) {
          const outcome = await runOne(client, input.environment, 'up', { secrets, source: history });
          if (outcome.error) throw new Error(`replaying the applied migration ${m.name} failed: ${outcome.error.message}`);
        }
      }
      const catalog = async (): Promise<SchemaChange> => ({
        tables: (await rows<{ name: string }>(client, userTables())).map((r) => r.name),
        indexes: (await rows<{ name: string }>(client, userIndexes())).map((r) => r.name),
      });
      // After seeding: the copy's own history is not observed.
      await installObserver(client, { url: db.url });
      const before = await catalog();
      let ok = true;
      for (const name of input.pending) {
        const tablesBefore = (await rows<{ name: string }>(client, userTables())).map((r) => r.name);
        const factsBefore = await readSchemaFacts(client);
        await beginObserved(client, name);
        // data-bearing rehearsal (issue 18): with data on the copy, every statement of the UP phase is timed with its locks.
        const outcome = data
          ? await data.measure(name, client, (timed) => runOne(timed, input.environment, 'up', { secrets, source }))
          : await runOne(client, input.environment, 'up', { secrets, source });
        const observed = await collectObserved(client, name);
        traces[name] = { statements: outcome.statements, transactional: outcome.transactional, tablesBefore, factsBefore, observed };
        steps.push({ phase: 'up', migration: outcome.migration || name, durationMs: outcome.durationMs, ok: !outcome.error, error: outcome.error });
        if (outcome.error) {
          ok = false;
          break;
        }
      }
      if (ok) {
        const after = await catalog();
        created.tables = after.tables.filter((t) => !before.tables.includes(t));
        created.indexes = after.indexes.filter((t) => !before.indexes.includes(t));
        dropped.tables = before.tables.filter((t) => !after.tables.includes(t));
        dropped.indexes = before.indexes.filter((t) => !after.indexes.includes(t));
      }
      for (const name of [...input.pending].reverse()) if (ok) ok = await run('down', 'down', name);
      for (const name of input.pending) if (ok) ok = await run('up-again', 'up', name);
      // The runbook's smoke ETL, on the copy: a migration that breaks the worker's writes fails here, before approval.
      if (ok && input.environment.verify.smokeEtl) smoke = await smokeEtl(client, input.environment, input.runId);
    } finally {
      await client.end().catch(() => undefined);
    }
    return {
      database: db.name,
      created,
      dropped,
      seededFrom,
      seedNote,
      steps,
      traces,
      downStatements,
      failed: steps.find((s) => !s.ok) ?? null,
      smoke,
      durationMs: Math.round(performance.now() - started),
      data: data?.result() ?? null, // data-bearing rehearsal (issue 18)
    };
  } finally {
    await db.drop();
  }
}
