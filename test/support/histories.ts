// The realistic fixture histories under test/fixtures/histories/<name>/: a
// migrations/ directory as a project keeps it, and the local modules it
// imports beside it (lib/). They are read from the source tree, never from
// dist/ (tsconfig.json leaves them out of the build: the service loads the
// .ts migrations itself, as it would a project's).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runner } from 'node-pg-migrate';
import { PROJECT_ROOT } from '../../database/paths.js';
import { adminQuery } from './db.js';

export interface FixtureHistory {
  /** The closure root: what the sealed snapshot may follow imports into. */
  root: string;
  migrations: string;
  /** Migration names in run order. */
  names: string[];
}

export async function fixtureHistory(name: string): Promise<FixtureHistory> {
  const root = join(PROJECT_ROOT, 'test/fixtures/histories', name);
  const migrations = join(root, 'migrations');
  const names = (await readdir(migrations)).filter((f) => /\.(js|ts|sql)$/.test(f)).map((f) => f.replace(/\.(js|ts|sql)$/, '')).sort();
  return { root, migrations, names };
}

/**
 * `node-pg-migrate up` exactly as a project runs it without the service:
 * node-pg-migrate's own loaders (jiti for .js/.ts, its SQL loader for .sql),
 * one transaction per migration, its own lock and order check.
 */
export async function rawUp(url: string, dir: string, count?: number): Promise<void> {
  await runner({ databaseUrl: url, dir, migrationsTable: 'pgmigrations', direction: 'up', ...(count === undefined ? {} : { count }), singleTransaction: false, log: () => undefined });
}

/** Drops a role a fixture creates (cluster-global, so no database drop takes it along). */
export async function dropRole(role: string): Promise<void> {
  await adminQuery(`DROP ROLE IF EXISTS ${role}`);
}

export async function roleExists(role: string): Promise<boolean> {
  return (await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
}
