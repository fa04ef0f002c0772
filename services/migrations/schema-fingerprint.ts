import { createHash } from 'node:crypto';
import { exec, one, rows, type Query, type Queryable } from '../../database/db.js';
import { isPgError } from '../../database/pg-errors.js';
import { otherObjects } from '../../database/sql/schema-fingerprint-objects.js';
import {
  currentReadSettings, relationObjects, relationSignatures, setReadSettings, type FingerprintRow, type FingerprintScope, type ReadSettings,
} from '../../database/sql/schema-fingerprint.js';

// A database's schema as a set of objects (database/sql/schema-fingerprint.ts),
// and what differs between two of them: how the rehearsal tells whether a
// down migration restored what its up found, and how a rollback tells
// whether the target is back to its schema from before the apply.

/** 'kind identity' → its row. */
export type SchemaFingerprint = Map<string, FingerprintRow>;

export type { FingerprintScope } from '../../database/sql/schema-fingerprint.js';

const keyOf = (r: Pick<FingerprintRow, 'kind' | 'identity'>) => `${r.kind} ${r.identity}`;

type RelationRow = FingerprintRow & { rel_oid: number };

/** A relation's oid and the transaction ids of its catalog rows (relationSignatures): moves with any DDL on it. */
export interface RelationSignature {
  oid: number;
  sig: string;
}

/**
 * Read with search_path set to pg_catalog alone, so every name in a default,
 * an index or a view definition comes out schema-qualified whatever the
 * session had set (a migration's SET search_path must not look like a schema
 * change), and with generic plans for the prepared reads (re-planning these
 * catalog queries costs many times running them). The session's own settings
 * are put back afterwards.
 */
async function withQualifiedNames<T>(db: Queryable, fn: () => Promise<T>): Promise<T> {
  const saved = await one<ReadSettings>(db, currentReadSettings());
  await exec(db, setReadSettings({ search_path: 'pg_catalog', plan_cache_mode: 'force_generic_plan' }));
  try {
    return await fn();
  } finally {
    await exec(db, setReadSettings(saved));
  }
}

/** A row as a fingerprint holds it: its key, and only the row's own fields (not rel_oid). */
const entryOf = (r: FingerprintRow): [string, FingerprintRow] => [keyOf(r), { kind: r.kind, identity: r.identity, parent: r.parent, definition: r.definition }];

function assemble(relationRows: Iterable<FingerprintRow>, others: FingerprintRow[]): SchemaFingerprint {
  const fp: SchemaFingerprint = new Map();
  for (const r of [...relationRows, ...others]) fp.set(...entryOf(r));
  return fp;
}

/** The whole schema, read at once (the target before an apply and after a rollback). */
export async function readFingerprint(db: Queryable, scope: FingerprintScope): Promise<SchemaFingerprint> {
  return withQualifiedNames(db, async () => assemble(await rows<RelationRow>(db, relationObjects(scope, null)), await rows<FingerprintRow>(db, otherObjects())));
}

/**
 * Reads the same database's schema again and again (the rehearsal: before
 * every up, after every down). Deparsing indexes, constraints and defaults is
 * what costs; a relation whose catalog rows did not change since the last
 * read (relationSignatures) keeps the rows read then. Another object's
 * rename can leave a kept row's text behind, but that object itself shows
 * the change, so whether two reads differ is still told right.
 */
export function fingerprintReader(scope: FingerprintScope, opts: { qualifiedSession?: boolean } = {}): FingerprintRead {
  // Kept rows as fingerprint entries, made once when read: a read builds its map from them without copying rows
  // (maps of every relation's rows, before every migration, were much of the rehearsal's own work).
  const kept = new Map<number, { sig: string; entries: Array<[string, FingerprintRow]> }>();
  const relationEntries = async (db: Queryable, oids: readonly number[]) => {
    const fresh = new Map<number, Array<[string, FingerprintRow]>>(oids.map((oid) => [oid, []]));
    for (const r of await prepared<RelationRow>(db, 'sfm-fingerprint-relations', relationObjects(scope, [...oids]))) fresh.get(r.rel_oid)?.push(entryOf(r));
    return fresh;
  };
  const readOthers = (db: Queryable) => prepared<FingerprintRow>(db, 'sfm-fingerprint-others', otherObjects());
  // On a second session the objects that are not relations are read beside the relations, and then the hinted
  // relations (nothing commits meanwhile); on one, pg queues the queries.
  const read = async (db: Queryable, others: Queryable, opts: FingerprintReadOptions = {}) => {
    const hint = others !== db && opts.hint?.length ? new Set(opts.hint) : null;
    const rest = readOthers(others);
    const guessed = hint ? rest.then(() => relationEntries(others, [...hint])) : null;
    // Settled below in every case: a rejection while the signatures are read must not count as unhandled.
    rest.catch(() => undefined);
    guessed?.catch(() => undefined);
    const sigs = await prepared<RelationSignature>(db, 'sfm-fingerprint-signatures', relationSignatures());
    opts.onSignatures?.(sigs);
    const stale = sigs.filter((s) => kept.get(s.oid)?.sig !== s.sig);
    opts.onChanged?.(stale.map((s) => s.oid));
    // The signatures decide what is read again; the hint only lets the likely part of it be read beside them.
    const missed = stale.filter((s) => !hint?.has(s.oid)).map((s) => s.oid);
    const [fromHint, fresh] = await Promise.all([guessed ?? new Map<number, Array<[string, FingerprintRow]>>(), missed.length ? relationEntries(db, missed) : new Map<number, Array<[string, FingerprintRow]>>()]);
    for (const s of stale) kept.set(s.oid, { sig: s.sig, entries: fromHint.get(s.oid) ?? fresh.get(s.oid)! });
    const present = new Set(sigs.map((s) => s.oid));
    for (const oid of kept.keys()) if (!present.has(oid)) kept.delete(oid);
    const fp: SchemaFingerprint = new Map();
    for (const k of kept.values()) for (const [key, row] of k.entries) fp.set(key, row);
    for (const r of await rest) fp.set(...entryOf(r));
    return fp;
  };
  // A session opened with QUALIFIED_SESSION_OPTIONS needs no settings saved and put back around each read; `others`
  // only counts then (the settings withQualifiedNames sets are the first session's alone).
  return (db, others = db, readOpts) => (opts.qualifiedSession ? read(db, others, readOpts) : withQualifiedNames(db, () => read(db, db, readOpts)));
}

export interface FingerprintReadOptions {
  /** Gets the relation signatures as soon as they are read (before the rest), for another reader of the same moment (the linter's facts, catalog-facts.ts). */
  onSignatures?: (sigs: RelationSignature[]) => void;
  /**
   * Relations likely to have changed since the last read, read on the second
   * session beside the signatures. The signatures still decide: a relation
   * they show changed that is not here is read after them; one here that did
   * not change keeps its rows.
   */
  hint?: readonly number[];
  /** The relations the signatures showed changed since the last read (all of them on the first). */
  onChanged?: (oids: number[]) => void;
}

/** One read of a fingerprintReader. */
export type FingerprintRead = (db: Queryable, others?: Queryable, opts?: FingerprintReadOptions) => Promise<SchemaFingerprint>;

/** A session's start-up options (libpq `options`) under which fingerprintReader({qualifiedSession: true}) may read, both sessions: see withQualifiedNames. */
export const QUALIFIED_SESSION_OPTIONS = '-c search_path=pg_catalog -c plan_cache_mode=force_generic_plan';

/** Start-up options of a session that only runs prepared catalog reads again and again: planned once (see prepared()). */
export const GENERIC_PLANS = '-c plan_cache_mode=force_generic_plan';

const INVALID_SQL_STATEMENT_NAME = '26000';

/**
 * The rehearsal's reads as named prepared statements, on its own throw-away
 * database: planning these catalog queries costs as much as running them,
 * and each session runs them once per migration. A migration that ran
 * DEALLOCATE ALL (or DISCARD ALL) took them away: read unprepared then.
 */
async function prepared<T>(db: Queryable, name: string, query: Query): Promise<T[]> {
  try {
    return await rows<T>(db, { ...query, name });
  } catch (err) {
    if (!isPgError(err, INVALID_SQL_STATEMENT_NAME)) throw err;
    return rows<T>(db, query);
  }
}

/** Sorted rows: what is stored, and what the digest covers. */
export function fingerprintRows(fp: SchemaFingerprint): FingerprintRow[] {
  return [...fp.values()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
}

export function fingerprintFromRows(list: FingerprintRow[]): SchemaFingerprint {
  return new Map(list.map((r) => [keyOf(r), r]));
}

/**
 * What the rows cover changes with this service's releases: a fingerprint
 * stored by an older one (run_schema_baselines.format) is compared with a
 * fresh read only in the kinds it had, or every owner in the database would
 * count as left behind by a rollback. Format 1: relations and their parts,
 * schemas, types, functions, extensions, event triggers, publications.
 */
export const FINGERPRINT_FORMAT = 2;

const KINDS_SINCE: Record<number, string[]> = {
  2: ['cast', 'operator', 'operator class', 'operator family', 'collation', 'text search configuration', 'text search dictionary',
    'text search parser', 'text search template', 'foreign-data wrapper', 'server', 'user mapping', 'owner', 'privileges', 'comment', 'default privileges'],
};

/** `fp` as a reader of `format` would have read it. */
export function asOfFormat(fp: SchemaFingerprint, format: number): SchemaFingerprint {
  const newer = new Set(Object.entries(KINDS_SINCE).filter(([since]) => Number(since) > format).flatMap(([, kinds]) => kinds));
  return newer.size ? new Map([...fp].filter(([, r]) => !newer.has(r.kind))) : fp;
}

export function fingerprintDigest(fp: SchemaFingerprint): string {
  const hash = createHash('sha256');
  for (const r of fingerprintRows(fp)) hash.update(`${r.kind}\0${r.identity}\0${r.parent ?? ''}\0${r.definition}\n`);
  return hash.digest('hex');
}

/** One object that differs: absent on one side (null) or with another definition. */
export interface FingerprintChange {
  key: string;
  before: FingerprintRow | null;
  after: FingerprintRow | null;
}

export function diffFingerprints(before: SchemaFingerprint, after: SchemaFingerprint): Map<string, FingerprintChange> {
  const out = new Map<string, FingerprintChange>();
  for (const [key, row] of after) {
    const was = before.get(key);
    if (!was || was.definition !== row.definition || was.parent !== row.parent) out.set(key, { key, before: was ?? null, after: row });
  }
  for (const [key, row] of before) if (!after.has(key)) out.set(key, { key, before: row, after: null });
  return out;
}

export interface DescribedDiff {
  /** In `after`, not in `before`. */
  leaves: string[];
  /** In `before`, not in `after`. */
  removes: string[];
  /** In both, defined differently. */
  changes: string[];
}

// Parents whose children (columns, constraints, indexes, triggers, policies, owned sequences) go without saying.
const PARENT_KINDS = new Set(['table', 'view', 'materialized view', 'foreign table', 'domain', 'composite type']);

// Rows about another object, whose identity is that object's key ('table public.t'), and how they are named.
const ABOUT: Record<string, string> = { owner: 'owner of', privileges: 'privileges on', comment: 'comment on' };

const named = (r: FingerprintRow) => `${ABOUT[r.kind] ?? r.kind} ${r.identity}`;

/**
 * The differences as 'kind name' lists, the children of a table (or domain)
 * that is itself left or removed folded into it: "leaves table
 * public.audit_log", not also its columns and its primary key; an object's
 * owner, privileges and comment likewise. Privileges are rows only where
 * they are not the built-in default, but every object has some: one that
 * appears or disappears on an object that stays is a change ("changes
 * privileges on table public.t").
 */
export function describeDiff(changes: Iterable<FingerprintChange>): DescribedDiff {
  const list = [...changes];
  const fold = (side: FingerprintRow[]) => {
    const parents = new Set(side.filter((r) => PARENT_KINDS.has(r.kind)).map((r) => r.identity));
    const keys = new Set(side.map(keyOf));
    return side.filter((r) => !(r.parent !== null && parents.has(r.parent)) && !(r.kind in ABOUT && keys.has(r.identity)));
  };
  const leaves = fold(list.filter((c) => c.before === null).map((c) => c.after!));
  const removes = fold(list.filter((c) => c.after === null).map((c) => c.before!));
  const changed = list.filter((c) => c.before !== null && c.after !== null).map((c) => c.after!);
  const privileges = (r: FingerprintRow) => r.kind === 'privileges';
  return {
    leaves: leaves.filter((r) => !privileges(r)).map(named).sort(),
    removes: removes.filter((r) => !privileges(r)).map(named).sort(),
    changes: [...changed, ...leaves.filter(privileges), ...removes.filter(privileges)].map(named).sort(),
  };
}

const MAX_LISTED = 8;

function listed(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `${shown} and ${items.length - MAX_LISTED} more` : shown;
}

/** "leaves table public.audit_log, cast (text AS public.mood); removes column public.users.email; changes enum public.mood, owner of table public.t". */
export function diffSentence(d: DescribedDiff): string {
  return [
    d.leaves.length ? `leaves ${listed(d.leaves)}` : '',
    d.removes.length ? `removes ${listed(d.removes)}` : '',
    d.changes.length ? `changes ${listed(d.changes)}` : '',
  ].filter(Boolean).join('; ');
}

export const isEmptyDiff = (d: DescribedDiff) => d.leaves.length + d.removes.length + d.changes.length === 0;
