import { resolve } from 'node:path';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { PROJECT_ROOT } from './paths.js';

export const CONTROL_MIGRATIONS_DIR = resolve(PROJECT_ROOT, 'database/control-migrations');
export const CONTROL_MIGRATIONS_TABLE = 'sf_control_migrations';
// Our own key (not node-pg-migrate's), so replicas starting together queue
// behind one another instead of failing on a held lock.
const CONTROL_MIGRATION_LOCK = 7_317_001_000_001;

export interface MigrateLog {
  info(msg: string): void;
}

/** Brings the control database up to date; safe when several replicas start at once. */
export async function migrateControlDatabase(connectionString: string, log?: MigrateLog, direction: 'up' | 'down' = 'up'): Promise<string[]> {
  const client = new pg.Client({ connectionString, application_name: 'starforge-control-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [CONTROL_MIGRATION_LOCK]);
    const applied = await runner({
      dbClient: client,
      dir: CONTROL_MIGRATIONS_DIR,
      migrationsTable: CONTROL_MIGRATIONS_TABLE,
      direction,
      count: Infinity,
      singleTransaction: false,
      noLock: true,
      checkOrder: true,
      log: () => undefined,
    });
    if (applied.length > 0) log?.info(`control database: applied ${applied.map((m) => m.name).join(', ')}`);
    return applied.map((m) => m.name);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [CONTROL_MIGRATION_LOCK]).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
