import type { Query } from '../db.js';
import { OBSERVE_SCHEMA } from './observe.js';

// A normalised description of a database's schema, one row per object:
// (kind, identity, parent, definition). One database at two moments has the
// same schema when these rows are the same: the rehearsal's copy before an up
// and after its down, a target before an apply and after a rollback `down`.
// Never a copy against its target: owners and privileges are in the rows, and
// a copy restored with --no-owner --no-privileges differs from its target in
// them. No oids, no column order. Extension members are represented by their
// extension; array types and tables' row types by what they follow; built-in
// casts, and everything in pg_catalog and information_schema, are left out.
//
// Besides relations with their columns, constraints, indexes, triggers, rules
// and policies: schemas, types, domains, functions, extensions, event
// triggers, publications, casts, operators, operator classes and families,
// collations, text search configurations, dictionaries, parsers and
// templates, foreign-data wrappers, foreign servers, user mappings; the owner
// of everything that has one; privileges (relations, columns, functions,
// types, schemas, wrappers, servers) where they differ from the built-in
// default, and default privileges; comments on relations, columns and the
// objects above. Option values of wrappers, servers and user mappings can
// hold passwords: only their names appear, the values as one SHA-256.
//
// Left out: the migrations table (and its sequence), the rehearsal observer's
// schema and event triggers, temporary schemas, comments on constraints,
// indexes, triggers and the like, procedural languages, large objects, and
// anything outside the database (roles, tablespaces: the rehearsal's cluster
// guard watches those).

export interface FingerprintRow {
  kind: string;
  identity: string;
  /** The relation or domain a column, constraint, index, trigger, policy, rule or owned sequence belongs to; for a relation's or column's owner, privileges or comment, that relation. */
  parent: string | null;
  definition: string;
}

// Extension members are left out (their extension stands for them); checked per object through pg_depend's index.
export const notInExtension = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${catalog}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

// The schemas compared: not the system's, the observer's, temporary or TOAST ones, nor an extension's.
export const NAMESPACES = `ns AS NOT MATERIALIZED (
      SELECT n.oid, n.nspname FROM pg_namespace n
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '${OBSERVE_SCHEMA}')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
        AND ${notInExtension('pg_namespace', 'n.oid')}
    )`;

// Relations in those schemas but the migrations table ($1 schema, $2 names) and extension members; `filter` narrows them.
// `once`: computed once for all the branches that read it (a few relations: else each branch scans pg_class again).
const relations = (filter: string, once = false) => `rel AS ${once ? '' : 'NOT '}MATERIALIZED (
      SELECT c.oid, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relpartbound, c.reloptions, c.relowner, c.relacl,
             CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind,
             quote_ident(ns.nspname) || '.' || quote_ident(c.relname) AS ident
      FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        AND NOT (ns.nspname = $1 AND c.relname = ANY($2::text[]))
        AND ${notInExtension('pg_class', 'c.oid')}
        AND ${filter}
    )`;

// Objects created after initdb (FirstNormalObjectId): what a signature needs to read of the catalogs, and the casts compared.
export const FIRST_USER_OID = 16384;

// An ACL as text, its items sorted (a REVOKE and GRANT back may reorder them); '' for none at all.
export const aclText = (acl: string) => `coalesce((SELECT string_agg(i::text, ',' ORDER BY i::text) FROM unnest(${acl}) i), '')`;

// Privileges are compared where they are not the built-in default: NULL (never granted or revoked) and a
// GRANT undone by its REVOKE (an explicit copy of the default) are the same; `type` as acldefault() takes it.
export const aclChanged = (acl: string, type: string, owner: string) =>
  `${acl} IS NOT NULL AND ${aclText(acl)} <> ${aclText(`acldefault(${type}, ${owner})`)}`;

// A changed catalog row is a new row version with a newer transaction id, an
// added or dropped one changes the count: count and sum of xmin tell that a
// group of rows changed without sorting and concatenating them.
const CHANGES = "count(*) || ':' || sum(xmin::text::bigint)";

const exclusions = (exclude: FingerprintScope) => [exclude.migrationsSchema, [exclude.migrationsTable, `${exclude.migrationsTable}_id_seq`]];

export interface FingerprintScope {
  migrationsSchema: string;
  migrationsTable: string;
}

/**
 * Relations (tables, views, materialized views, sequences, foreign tables)
 * with what belongs to them: columns, constraints, indexes, triggers, rules,
 * policies, their owner, privileges (also per column) and comments (also on
 * columns); `oids` null for all of them, else only those. An owner,
 * privileges or comment row is named by the object it describes ('table
 * public.t', 'column public.t.c'): that object's own key. Each row carries
 * its relation's oid (rel_oid), so a reader can keep the rows of relations
 * that did not change.
 */
export const relationObjects = (exclude: FingerprintScope, oids: number[] | null): Query => ({
  text: `
    WITH ${NAMESPACES},
    ${relations(oids ? 'c.oid = ANY($3::oid[])' : 'true', oids !== null)}
    SELECT r.oid::int AS rel_oid, r.kind, r.ident AS identity,
           quote_ident(owner_ns.nspname) || '.' || quote_ident(owner.relname) AS parent,
           concat_ws(' ', r.relkind, r.relpersistence,
             CASE WHEN r.relrowsecurity THEN 'row-security' END, CASE WHEN r.relforcerowsecurity THEN 'forced' END,
             pg_get_expr(r.relpartbound, r.oid), array_to_string(r.reloptions, ','),
             CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid) END,
             CASE WHEN r.relkind = 'S' THEN concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle) END) AS definition
    FROM rel r
    LEFT JOIN pg_sequence s ON s.seqrelid = r.oid
    LEFT JOIN pg_depend owned ON r.relkind = 'S' AND owned.classid = 'pg_class'::regclass AND owned.objid = r.oid
      AND owned.refclassid = 'pg_class'::regclass AND owned.deptype IN ('a', 'i')
    LEFT JOIN pg_class owner ON owner.oid = owned.refobjid
    LEFT JOIN pg_namespace owner_ns ON owner_ns.oid = owner.relnamespace
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'column', r.ident || '.' || quote_ident(a.attname), r.ident,
           concat_ws(' ', format_type(a.atttypid, a.atttypmod),
             CASE WHEN a.attnotnull THEN 'not null' END,
             CASE WHEN a.attgenerated = 's' THEN 'generated as ' || pg_get_expr(ad.adbin, ad.adrelid)
                  WHEN ad.adbin IS NOT NULL THEN 'default ' || pg_get_expr(ad.adbin, ad.adrelid) END,
             CASE a.attidentity WHEN 'a' THEN 'identity always' WHEN 'd' THEN 'identity by default' END,
             CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN 'collate ' || co.collname END)
    FROM rel r
    JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE r.relkind IN ('r', 'p', 'f')
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'constraint', r.ident || '.' || quote_ident(con.conname), r.ident, pg_get_constraintdef(con.oid)
    FROM pg_constraint con JOIN rel r ON r.oid = con.conrelid
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'index', quote_ident(ins.nspname) || '.' || quote_ident(ic.relname), r.ident, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN rel r ON r.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace ins ON ins.oid = ic.relnamespace
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'trigger', r.ident || '.' || quote_ident(tg.tgname), r.ident, pg_get_triggerdef(tg.oid)
    FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'rule', r.ident || '.' || quote_ident(rw.rulename), r.ident, pg_get_ruledef(rw.oid)
    FROM pg_rewrite rw JOIN rel r ON r.oid = rw.ev_class WHERE rw.rulename <> '_RETURN'
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'policy', r.ident || '.' || quote_ident(p.polname), r.ident,
           concat_ws(' ', p.polcmd, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
             (SELECT string_agg(CASE WHEN u = 0 THEN 'public' ELSE pg_get_userbyid(u)::text END, ',' ORDER BY 1) FROM unnest(p.polroles) u),
             pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p JOIN rel r ON r.oid = p.polrelid
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'owner', r.kind || ' ' || r.ident, r.ident, pg_get_userbyid(r.relowner)::text FROM rel r
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'privileges', r.kind || ' ' || r.ident, r.ident, ${aclText('r.relacl')}
    FROM rel r WHERE ${aclChanged('r.relacl', `(CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END)::"char"`, 'r.relowner')}
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'privileges', 'column ' || r.ident || '.' || quote_ident(a.attname), r.ident, ${aclText('a.attacl')}
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE a.attacl IS NOT NULL AND cardinality(a.attacl) > 0
    UNION ALL
    SELECT r.oid::int AS rel_oid, 'comment', CASE WHEN d.objsubid = 0 THEN r.kind || ' ' || r.ident ELSE 'column ' || r.ident || '.' || quote_ident(a.attname) END,
           r.ident, md5(d.description)
    FROM rel r JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = r.oid
    LEFT JOIN pg_attribute a ON d.objsubid > 0 AND a.attrelid = r.oid AND a.attnum = d.objsubid`,
  values: oids ? [...exclusions(exclude), oids] : exclusions(exclude),
});

/**
 * Per relation, the transaction ids (xmin) of the catalog rows that make up
 * its relationObjects(): any DDL on the relation, its columns, defaults,
 * constraints, indexes, triggers, rules, policies or comments changes it (an
 * owner or a privilege is in its pg_class or pg_attribute row). Cheap (no
 * deparsing), so the rehearsal re-reads only the relations whose signature moved.
 */
export const relationSignatures = (): Query => ({
  // One part per catalog and relation, tagged by a letter, gathered by one aggregate (a sum of hashes: no sorting):
  // joining each catalog's aggregate to the relations instead made nested loops of them (a fresh copy's catalog
  // statistics say one row). Every user relation gets one, also those relationObjects() leaves out (the migrations
  // table, extension members): their rows are read as none, and the filter costs more than it saves. The 'o' part is
  // a sequence's owner (OWNED BY, identity), all relationObjects() reads of pg_depend: read through pg_sequence, not
  // every index's and TOAST table's dependency.
  text: `
    WITH parts AS (
      SELECT c.oid, 'c' || c.xmin::text AS part FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid >= ${FIRST_USER_OID} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
      UNION ALL SELECT attrelid, 'a' || ${CHANGES} FROM pg_attribute WHERE attrelid >= ${FIRST_USER_OID} AND attnum > 0 GROUP BY attrelid
      UNION ALL SELECT adrelid, 'd' || ${CHANGES} FROM pg_attrdef WHERE adrelid >= ${FIRST_USER_OID} GROUP BY adrelid
      UNION ALL SELECT conrelid, 'k' || ${CHANGES} FROM pg_constraint WHERE conrelid >= ${FIRST_USER_OID} GROUP BY conrelid
      UNION ALL SELECT i.indrelid, 'i' || count(*) || ':' || sum(i.xmin::text::bigint) || ':' || sum(ic.xmin::text::bigint)
                FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid >= ${FIRST_USER_OID} GROUP BY i.indrelid
      UNION ALL SELECT tgrelid, 't' || ${CHANGES} FROM pg_trigger WHERE tgrelid >= ${FIRST_USER_OID} GROUP BY tgrelid
      UNION ALL SELECT ev_class, 'r' || ${CHANGES} FROM pg_rewrite WHERE ev_class >= ${FIRST_USER_OID} GROUP BY ev_class
      UNION ALL SELECT polrelid, 'p' || ${CHANGES} FROM pg_policy GROUP BY polrelid
      UNION ALL SELECT seqrelid, 's' || xmin::text FROM pg_sequence
      UNION ALL SELECT objid, 'o' || count(*) || ':' || sum(refobjid::bigint) || ':' || sum(xmin::text::bigint) FROM pg_depend
                WHERE classid = 'pg_class'::regclass AND objid IN (SELECT seqrelid FROM pg_sequence) AND refclassid = 'pg_class'::regclass
                  AND deptype IN ('a', 'i') GROUP BY objid
      UNION ALL SELECT objoid, 'm' || ${CHANGES} FROM pg_description
                WHERE classoid = 'pg_class'::regclass AND objoid >= ${FIRST_USER_OID} GROUP BY objoid
    )
    -- Only relations (the 'c' part): the other parts also cover indexes and TOAST tables.
    SELECT oid::int AS oid, count(*) || ':' || sum(hashtextextended(part, 0)) AS sig FROM parts GROUP BY oid HAVING bool_or(part LIKE 'c%')`,
  values: [],
});

export interface ReadSettings {
  search_path: string;
  plan_cache_mode: string;
}

export const currentReadSettings = (): Query => ({ text: "SELECT current_setting('search_path') AS search_path, current_setting('plan_cache_mode') AS plan_cache_mode" });

/** Session-level, as SET does; the caller restores what it read with currentReadSettings(). */
export const setReadSettings = (settings: ReadSettings): Query => ({
  text: "SELECT set_config('search_path', $1, false), set_config('plan_cache_mode', $2, false)",
  values: [settings.search_path, settings.plan_cache_mode],
});
