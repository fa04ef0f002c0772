// Which parts of the StarForge ETL a database has. The service is generic:
// a project without these tables has no ETL to smoke-test, pause or watch,
// and each of those steps is then "not configured", not a warning.
import type pg from 'pg';
import { rows } from '../../database/db.js';
import { existingTables } from '../../database/sql/verify.js';

/** Everything the smoke ETL writes to or reads (the worker's whole path). */
export const SMOKE_TABLES = ['hero_snapshots', 'user_profile_summary', 'user_troops', 'etl_errors', 'etl_control'] as const;
/** What the post-apply watch reads (services/verify/watch.ts etlRates). */
export const WATCHED_TABLES = ['hero_snapshots', 'etl_errors'] as const;
/** What the sql pause method sets (services/apply/workers.ts). */
export const CONTROL_TABLE = 'etl_control';

export interface EtlPresence {
  /** Tables of SMOKE_TABLES found in the public schema. */
  present: string[];
  missing: string[];
  /** All of SMOKE_TABLES exist: the smoke ETL can run. */
  smoke: boolean;
  /** WATCHED_TABLES exist: the watch has ETL activity to read. */
  watch: boolean;
  /** etl_control exists: the sql method has a flag to set. */
  control: boolean;
}

export async function etlPresence(client: pg.ClientBase): Promise<EtlPresence> {
  return presenceOf((await rows<{ name: string }>(client, existingTables(SMOKE_TABLES.map((t) => `public.${t}`)))).map((r) => r.name));
}

/** Presence from a list of 'schema.table' names (e.g. the tables a run creates, from its rehearsal). */
export function presenceOf(qualified: Iterable<string>): EtlPresence {
  const found = new Set([...qualified].filter((n) => n.startsWith('public.')).map((n) => n.slice('public.'.length)));
  const present = SMOKE_TABLES.filter((t) => found.has(t));
  return {
    present,
    missing: SMOKE_TABLES.filter((t) => !found.has(t)),
    smoke: present.length === SMOKE_TABLES.length,
    watch: WATCHED_TABLES.every((t) => found.has(t)),
    control: found.has(CONTROL_TABLE),
  };
}
