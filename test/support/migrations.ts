import { readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runner } from 'node-pg-migrate';
import { verifiedLoaders } from '../../services/migrations/loader.js';

/** The source of a tiny node-pg-migrate migration running raw SQL. */
export function migrationSource(up: string, down = 'SELECT 1', opts: { noTransaction?: boolean; comment?: string } = {}): string {
  const noTx = opts.noTransaction ? 'pgm.noTransaction(); ' : '';
  return `${opts.comment ? `${opts.comment}\n` : ''}export const up = (pgm) => { ${noTx}pgm.sql(${JSON.stringify(up)}); };\n` +
    `export const down = (pgm) => { ${noTx}pgm.sql(${JSON.stringify(down)}); };\n`;
}

/** Makes `dir` hold exactly these migrations (name -> source). */
export async function writeMigrations(dir: string, files: Record<string, string>): Promise<void> {
  for (const f of await readdir(dir)) await unlink(join(dir, f));
  for (const [name, source] of Object.entries(files)) await writeFile(join(dir, `${name}.js`), source);
}

/** Applies the first `count` migrations of `dir` to a database, as a plain node-pg-migrate user would. */
export async function applyMigrations(url: string, dir: string, count: number): Promise<void> {
  await runner({
    databaseUrl: url, dir, migrationsTable: 'pgmigrations', direction: 'up', count, singleTransaction: false, log: () => undefined,
    // Tests rewrite the same file names: never run a module cached from an earlier test.
    migrationLoaderStrategies: verifiedLoaders(),
  });
}

/** Small fixture migrations shared by the apply, scheduler and metrics tests. */
export const FIXTURES = {
  etlControl: migrationSource(
    `CREATE TABLE etl_control (id boolean PRIMARY KEY DEFAULT true CHECK (id), paused boolean NOT NULL DEFAULT false, reason text, changed_by text, changed_at timestamptz NOT NULL DEFAULT now()); INSERT INTO etl_control DEFAULT VALUES`,
    'DROP TABLE etl_control',
  ),
  accounts: migrationSource(
    `CREATE TABLE accounts (id int PRIMARY KEY, email text); INSERT INTO accounts SELECT g, 'u' || g || '@x' FROM generate_series(1, 50) g`,
    'DROP TABLE accounts',
  ),
  /** The two tables the post-apply watch reads (services/verify/watch.ts): a target with them has ETL activity to watch. */
  etlActivity: migrationSource(
    `CREATE TABLE hero_snapshots (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id text NOT NULL, raw jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), processed_at timestamptz, error_count int NOT NULL DEFAULT 0, last_error text); ` +
    `CREATE TABLE etl_errors (id bigserial PRIMARY KEY, snapshot_id uuid, error_type text NOT NULL, message text, created_at timestamptz NOT NULL DEFAULT now())`,
    'DROP TABLE etl_errors; DROP TABLE hero_snapshots',
  ),
  addNote: migrationSource('ALTER TABLE accounts ADD COLUMN note text', 'ALTER TABLE accounts DROP COLUMN note'),
  addScore: migrationSource('ALTER TABLE accounts ADD COLUMN score int', 'ALTER TABLE accounts DROP COLUMN score'),
};

/**
 * An etl_control table and an accounts table with 50 rows: the base most
 * fixture runs build on. Its runs pause workers through etl_control but have
 * no ETL activity to watch, so they end right after verification.
 */
export const FIXTURE_BASE = { '1000_etl-control': FIXTURES.etlControl, '1100_create-accounts': FIXTURES.accounts };

/** FIXTURE_BASE with the tables the post-apply watch reads: runs on it are watched. */
export const WATCHED_BASE = { '1000_etl-control': FIXTURES.etlControl, '1050_etl-activity': FIXTURES.etlActivity, '1100_create-accounts': FIXTURES.accounts };
