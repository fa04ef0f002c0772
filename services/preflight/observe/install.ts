import type pg from 'pg';
import { one, rows } from '../../../database/db.js';
import { backendPid, disableObserverSql, drainObservedEvents, holdsRelations, installObserverSql, observeLight, relationFiles } from '../../../database/sql/observe.js';
import { fromEvents, type EventRow } from './events.js';
import { LockSampler } from './sampler.js';
import type { ObserveMethod, Observation } from './types.js';

// The rehearsal calls installObserver(client) once on the throw-away
// database, then beginObserved / collectObserved around each migration's up.

interface RelationFile {
  oid: number;
  relation: string;
  relkind: string;
  filenode: string;
  index_of: number | null;
}

interface ObserverState {
  method: ObserveMethod;
  note: string | null;
  url: string | undefined;
  pid: number;
  sampler: LockSampler | null;
  before: RelationFile[] | null;
}

const observers = new WeakMap<pg.ClientBase, ObserverState>();
// Sampling cannot order what it saw within a migration.
const WHOLE_MIGRATION = { xid: '', seq: 0 };

/**
 * Installs event triggers on the database `client` is connected to (it must
 * be a throw-away one). Where that is refused (not a superuser) it falls back
 * to sampling the backend's pg_locks from a second connection to `url` and to
 * comparing relfilenodes before and after. Returns the method used.
 */
export async function installObserver(client: pg.ClientBase, options: { url?: string } = {}): Promise<ObserveMethod> {
  const { pid } = await one<{ pid: number }>(client, backendPid());
  let note: string | null = null;
  try {
    // One round trip (a simple query of many statements): BEGIN ... COMMIT, stopped at the first that fails.
    await client.query(['BEGIN', ...installObserverSql().map((q) => q.text), 'COMMIT'].join(';\n'));
    observers.set(client, { method: 'event-triggers', note: null, url: options.url, pid, sampler: null, before: null });
    return 'event-triggers';
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    const code = (err as { code?: string }).code;
    note = code === '42501'
      ? 'event triggers need a superuser on the rehearsal server; observed by sampling pg_locks and comparing relfilenodes instead (validating scans and dropped columns are not seen this way)'
      : `event triggers could not be installed (${(err as Error).message}); observed by sampling pg_locks and comparing relfilenodes instead`;
  }
  observers.set(client, { method: 'sampling', note, url: options.url, pid, sampler: null, before: null });
  return 'sampling';
}

/**
 * On a copy without a single table of the target's, every relation a
 * migration touches is new in the run: the locks and scans the event
 * triggers gather per DDL command could judge nothing, and are skipped.
 */
export async function observeNewRelationsOnly(client: pg.ClientBase, migrationsTable: { schema: string; name: string }): Promise<boolean> {
  if (observers.get(client)?.method !== 'event-triggers') return false;
  const { holds } = await one<{ holds: boolean }>(client, holdsRelations(migrationsTable.schema, migrationsTable.name));
  if (!holds) await client.query(observeLight());
  return !holds;
}

/** The phases after the up are not observed: the event triggers stop firing (any session of the copy; none installed is fine). */
export async function stopObserver(client: pg.ClientBase): Promise<void> {
  for (const q of disableObserverSql()) await client.query(q).catch(() => undefined);
}

function state(client: pg.ClientBase): ObserverState {
  const s = observers.get(client);
  if (!s) throw new Error('installObserver(client) has not been called on this connection');
  return s;
}

/** Whether beginObserved and collectObserved send queries of their own on the migration's session (sampling) or only read the events the triggers left (event triggers). */
export const observerQueriesBefore = (client: pg.ClientBase): boolean => state(client).method === 'sampling';

/** Call right before a migration runs. */
export async function beginObserved(client: pg.ClientBase, _migrationName: string): Promise<void> {
  const s = state(client);
  if (s.method !== 'sampling') return;
  s.before = await rows<RelationFile>(client, relationFiles());
  if (s.url) {
    s.sampler = new LockSampler(s.url, s.pid);
    await s.sampler.start();
  }
}

/** Call right after a migration ran: what it was seen doing. */
export async function collectObserved(client: pg.ClientBase, migrationName: string): Promise<Observation> {
  const s = state(client);
  if (s.method === 'event-triggers') return fromEvents(migrationName, await rows<EventRow>(client, drainObservedEvents()));
  const locks = s.sampler ? await s.sampler.stop() : new Map();
  s.sampler = null;
  const after = await rows<RelationFile>(client, relationFiles());
  const before = s.before ?? after;
  s.before = null;
  const afterByOid = new Map(after.map((r) => [r.oid, r]));
  const beforeByOid = new Map(before.map((r) => [r.oid, r]));
  const tables = (list: RelationFile[]) => list.filter((r) => r.relkind !== 'i');
  const obs: Observation = {
    migration: migrationName,
    method: 'sampling',
    locks: [...locks].map(([relation, mode]) => ({ relation, mode, during: null, at: WHOLE_MIGRATION })),
    rewrites: tables(before).flatMap((r) => {
      const now = afterByOid.get(r.oid);
      return now && now.filenode !== r.filenode ? [{ relation: r.relation, reason: 'its storage file was replaced (rewritten or truncated)', during: null }] : [];
    }),
    validations: [],
    // A new index on a table that was there before was built by reading all of it.
    scans: after.filter((r) => r.relkind === 'i' && !beforeByOid.has(r.oid) && r.index_of !== null && beforeByOid.has(r.index_of))
      .map((r) => ({ relation: beforeByOid.get(r.index_of!)!.relation, during: `CREATE INDEX ${r.relation}`, at: WHOLE_MIGRATION })),
    drops: tables(before).filter((r) => !afterByOid.has(r.oid))
      .map((r) => ({ objectType: r.relkind === 'm' ? 'materialized view' : 'table', identity: r.relation, relation: r.relation, during: null })),
    notes: [s.note ?? 'observed by sampling', ...(s.url ? [] : ['no second connection for sampling locks'])],
  };
  return obs;
}
