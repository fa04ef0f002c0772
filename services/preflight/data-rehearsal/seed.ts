import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { rows } from '../../../database/db.js';
import { scrubSecrets } from '../../../database/pg-errors.js';
import { copyTableSizes } from '../../../database/sql/data-rehearsal.js';
import type { BackupRecord } from '../../apply/backup.js';
import type { EnvironmentConfig } from '../../environments/model.js';
import { measureFixedCosts, readParallelSettings } from './calibrate.js';
import { DataRehearsal, type SeededCopy } from './data-rehearsal.js';
import { withoutDataValues } from './redact.js';
import { SeedSkipped, type SeedContext, type SeedOutcome } from './seed-context.js';
import { seedFull } from './seed-full.js';
import { seedSample } from './seed-sample.js';

export interface SeedDataInput {
  environment: EnvironmentConfig;
  targetUrl: string;
  /** The throw-away database, already holding the target's schema and history. */
  databaseUrl: string;
  /** How that schema got there: data goes only into a copy of the target's own schema (pg_dump). */
  schemaFrom: 'pg_dump' | 'replay' | 'empty';
  /** The target's applied migrations: a backup holding others is not the target's data. */
  applied: string[];
  /** full: the environment's latest verified pg_dump backup (null: none). */
  latestBackup?: BackupRecord | null;
  secrets: string[];
}

function skippedCopy(requested: 'sample' | 'full', reason: string, tooLarge: boolean, seedMs: number): SeededCopy {
  return {
    requested, mode: 'schema', skipped: { reason, tooLarge }, source: null, sampleRows: null, tables: [], seededBytes: 0,
    foreignKeysNotValid: [], seedMs, notes: [], fixed: null, parallel: null,
  };
}

/**
 * Copies the target's rows (preflight.data: sample or full) into the
 * throw-away database. Never fails the rehearsal: when the data cannot be
 * copied, the copy keeps the schema alone (one transaction: nothing half
 * loaded) and the result says why. The target is only read, by read-only
 * sessions.
 */
export async function seedData(input: SeedDataInput): Promise<DataRehearsal> {
  const started = performance.now();
  const settings = input.environment.preflight;
  const requested = settings.data === 'full' ? 'full' : 'sample';
  const elapsed = () => Math.round(performance.now() - started);
  if (input.schemaFrom !== 'pg_dump') {
    return new DataRehearsal(skippedCopy(requested, 'the copy was built by replaying the history, not from the target\'s own schema, so its rows cannot be loaded into it', false, 0), input.databaseUrl);
  }
  const target = new pg.Client({ connectionString: input.targetUrl, application_name: 'starforge-rehearsal-seed', options: '-c default_transaction_read_only=on' });
  const copy = new pg.Client({ connectionString: input.databaseUrl, application_name: 'starforge-rehearsal-seed' });
  target.on('error', () => undefined);
  copy.on('error', () => undefined);
  try {
    await target.connect();
    await copy.connect();
    const ctx: SeedContext = {
      environment: input.environment, target, targetUrl: input.targetUrl, copy, copyUrl: input.databaseUrl, sampleRows: settings.sampleRows,
      secrets: [...input.secrets, input.targetUrl, input.databaseUrl],
    };
    const outcome: SeedOutcome = requested === 'sample'
      ? await seedSample(ctx)
      : await seedFull(ctx, input.latestBackup ?? null, input.applied, settings.fullDataMaxBytes);
    const fixed = await measureFixedCosts(copy);
    const parallel = await readParallelSettings(target);
    const sizes = new Map((await rows<{ relation: string; bytes: number }>(copy, copyTableSizes())).map((r) => [r.relation, r.bytes]));
    return new DataRehearsal({
      requested, mode: requested, skipped: null, source: outcome.source, sampleRows: requested === 'sample' ? settings.sampleRows : null,
      tables: outcome.tables, seededBytes: outcome.tables.reduce((sum, t) => sum + (sizes.get(t.table) ?? 0), 0),
      foreignKeysNotValid: outcome.foreignKeysNotValid, seedMs: elapsed(), notes: outcome.notes, fixed, parallel,
    }, input.databaseUrl);
  } catch (err) {
    const tooLarge = err instanceof SeedSkipped && err.tooLarge;
    const reason = err instanceof SeedSkipped ? err.message : `copying the data failed: ${withoutDataValues(scrubSecrets((err as Error).message, [...input.secrets, input.targetUrl, input.databaseUrl]))}`;
    return new DataRehearsal(skippedCopy(requested, reason, tooLarge, elapsed()), input.databaseUrl);
  } finally {
    await target.end().catch(() => undefined);
    await copy.end().catch(() => undefined);
  }
}
