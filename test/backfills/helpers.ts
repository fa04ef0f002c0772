// Shared fixtures of the backfill tests: a migration config whose environments
// read backfill definitions from a temp directory, a test table that counts
// every update of every row (to prove "exactly once"), and polling helpers.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestDatabase } from '../support/db.js';
import { waitFor } from '../scheduler/server-process.js';

export interface DefinitionsDir {
  dir: string;
  write(name: string, definition: object): Promise<void>;
  remove(): Promise<void>;
}

export async function definitionsDir(): Promise<DefinitionsDir> {
  const dir = await mkdtemp(join(tmpdir(), 'sf-backfills-'));
  return {
    dir,
    write: (name, definition) => writeFile(join(dir, `${name}.json`), JSON.stringify(definition, null, 2)),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A migration-config.js source: staging and production read backfills from `dir`; `staging` extras merge in. */
export function configSource(dir: string, staging: object = {}, production: object = {}): string {
  const config = {
    environments: {
      staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', backfillsDir: dir, lockTimeoutMs: 2000, statementTimeoutMs: 30000, ...staging },
      production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', backfillsDir: dir, ...production },
    },
  };
  return `export default ${JSON.stringify(config)};\n`;
}

/**
 * items(id bigint PK, raw jsonb, power int, updates int): a BEFORE UPDATE
 * trigger adds 1 to `updates` on every update of a row, so after a backfill
 * whose statement has no "already done" guard, updates = 1 on every row means
 * each row was changed exactly once: no batch redone, none skipped.
 */
export async function createItems(db: TestDatabase, rows: number, table = 'items'): Promise<void> {
  await db.query(`
    CREATE TABLE ${table} (id bigint PRIMARY KEY, raw jsonb NOT NULL, power int, updates int NOT NULL DEFAULT 0);
    CREATE OR REPLACE FUNCTION count_updates() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.updates := OLD.updates + 1; RETURN NEW; END $$;
    CREATE TRIGGER ${table}_count_updates BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION count_updates();
    INSERT INTO ${table} (id, raw) SELECT g, jsonb_build_object('power', g % 1000) FROM generate_series(1, ${rows}) g;
    ANALYZE ${table};
  `);
}

/** A definition over items: power from raw, with no guard (so a redone batch would show as updates = 2). */
export const itemsDefinition = (table = 'items', extra: object = {}) => ({
  description: `power of ${table} from raw`,
  table,
  keyColumn: 'id',
  batch: `UPDATE ${table} SET power = (raw->>'power')::int WHERE id BETWEEN $1 AND $2`,
  remaining: `SELECT count(*) FROM ${table} WHERE power IS NULL`,
  ...extra,
});

/** Rows by how often they were updated: {updates: count}. */
export async function updateHistogram(db: TestDatabase, table = 'items'): Promise<Record<number, number>> {
  const { rows } = await db.query(`SELECT updates, count(*)::int AS n FROM ${table} GROUP BY updates ORDER BY updates`);
  return Object.fromEntries(rows.map((r) => [r.updates as number, r.n as number]));
}

/** Polls `check` until it returns something other than undefined, or fails after `timeoutMs`. */
export function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  return waitFor(what, check, timeoutMs, everyMs);
}
