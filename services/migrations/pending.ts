import type pg from 'pg';
import { maybeOne, rows } from '../../database/db.js';
import { appliedMigrations, migrationsTableExists } from '../../database/sql/target.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { unprocessable } from '../errors.js';
import { digestOf, listMigrationFiles, type MigrationFile } from './files.js';

export interface AppliedMigration {
  name: string;
  runOn: string;
}

export interface PendingSet {
  applied: AppliedMigration[];
  pending: MigrationFile[];
  digest: string;
}

export async function readAppliedMigrations(client: pg.ClientBase, environment: EnvironmentConfig): Promise<AppliedMigration[]> {
  const { migrationsSchema: schema, migrationsTable: table } = environment;
  const exists = await maybeOne<{ exists: boolean }>(client, migrationsTableExists(schema, table));
  if (!exists?.exists) return [];
  const qualified = `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(table)}`;
  const applied = await rows<{ name: string; run_on: Date }>(client, appliedMigrations(qualified));
  return applied.map((r) => ({ name: r.name, runOn: r.run_on.toISOString() }));
}

export async function readMigrationFiles(environment: EnvironmentConfig): Promise<MigrationFile[]> {
  try {
    return await listMigrationFiles(environment.migrationsDir);
  } catch (err) {
    throw unprocessable(`Cannot read the ${environment.name} migrations directory: ${(err as Error).message}`);
  }
}

/**
 * Which files are not yet applied, refusing a target that node-pg-migrate
 * itself would refuse (an applied migration missing from the directory, or a
 * pending one ordered before an applied one).
 */
export function computePending(files: MigrationFile[], applied: AppliedMigration[], environment: string, to?: string): PendingSet {
  const appliedNames = new Set(applied.map((a) => a.name));
  const fileNames = new Set(files.map((f) => f.name));
  const missing = applied.find((a) => !fileNames.has(a.name));
  if (missing) {
    throw unprocessable(`The ${environment} database has migration "${missing.name}" applied, but no such file exists in the migrations directory; restore the file before creating a run.`, { rule: 'missing-migration-file' });
  }
  let pending = files.filter((f) => !appliedNames.has(f.name));
  const lastApplied = files.reduce((last, f, i) => (appliedNames.has(f.name) ? i : last), -1);
  const outOfOrder = files.findIndex((f, i) => i < lastApplied && !appliedNames.has(f.name));
  if (outOfOrder >= 0) {
    throw unprocessable(`Pending migration "${files[outOfOrder]!.name}" sorts before migration "${files[lastApplied]!.name}", which is already applied to ${environment}; rename it with a later prefix.`, { rule: 'migration-order' });
  }
  if (to !== undefined) {
    const index = pending.findIndex((f) => f.name === to);
    if (index < 0) {
      const why = appliedNames.has(to) ? 'is already applied' : 'is not a migration in the directory';
      throw unprocessable(`"to": "${to}" ${why}; pending migrations are: ${pending.map((p) => p.name).join(', ') || 'none'}.`, { rule: 'unknown-to', errors: [{ path: 'body/to', message: why }] });
    }
    pending = pending.slice(0, index + 1);
  }
  return { applied, pending, digest: digestOf(pending) };
}
