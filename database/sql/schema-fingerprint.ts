import type { Query } from '../db.js';
import { OBSERVE_SCHEMA } from './observe.js';

// A normalised description of a database's schema, one row per object:
// (kind, identity, parent, definition). Two databases, or one database at two
// moments, have the same schema when these rows are the same. No oids, no
// owners, no privileges (a copy restored with --no-owner --no-privileges
// differs from its target in those, and a rollback does not hinge on them),
// no column order. Extension members are represented by their extension;
// array types and tables' row types by what they follow. Left out: the
// migrations table (and its sequence), the rehearsal observer's schema and
// event triggers, temporary schemas, casts, operators, collations, text
// search objects, foreign servers.

export interface FingerprintRow {
  kind: string;
  identity: string;
  /** The relation or domain a column, constraint, index, trigger, policy, rule or owned sequence belongs to. */
  parent: string | null;
  definition: string;
}

export const schemaFingerprint = (exclude: { migrationsSchema: string; migrationsTable: string }): Query => ({
  text: `
    WITH ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
    ns AS (
      SELECT n.oid, n.nspname FROM pg_namespace n
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '${OBSERVE_SCHEMA}')
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
        AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_namespace'::regclass AND ext.objid = n.oid)
    ),
    rel AS (
      SELECT c.oid, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relpartbound, c.reloptions,
             quote_ident(ns.nspname) || '.' || quote_ident(c.relname) AS ident
      FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        AND NOT (ns.nspname = $1 AND c.relname = ANY($2::text[]))
        AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
    )
    SELECT 'schema' AS kind, quote_ident(nspname) AS identity, NULL::text AS parent, '' AS definition FROM ns
    UNION ALL
    SELECT CASE r.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END,
           r.ident,
           (SELECT o.ident FROM pg_depend d JOIN rel o ON o.oid = d.refobjid
             WHERE r.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1),
           concat_ws(' ', r.relkind, r.relpersistence,
             CASE WHEN r.relrowsecurity THEN 'row-security' END, CASE WHEN r.relforcerowsecurity THEN 'forced' END,
             pg_get_expr(r.relpartbound, r.oid), array_to_string(r.reloptions, ','),
             CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid) END,
             (SELECT concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
                FROM pg_sequence s WHERE s.seqrelid = r.oid))
    FROM rel r
    UNION ALL
    SELECT 'column', r.ident || '.' || quote_ident(a.attname), r.ident,
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
    SELECT 'constraint', owner.ident || '.' || quote_ident(con.conname), owner.ident, pg_get_constraintdef(con.oid)
    FROM pg_constraint con
    JOIN LATERAL (
      SELECT r.ident FROM rel r WHERE r.oid = con.conrelid
      UNION ALL
      SELECT quote_ident(ns.nspname) || '.' || quote_ident(ty.typname) FROM pg_type ty JOIN ns ON ns.oid = ty.typnamespace WHERE ty.oid = con.contypid
    ) owner ON true
    UNION ALL
    SELECT 'index', quote_ident(ins.nspname) || '.' || quote_ident(ic.relname), r.ident, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN rel r ON r.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace ins ON ins.oid = ic.relnamespace
    UNION ALL
    SELECT 'trigger', r.ident || '.' || quote_ident(tg.tgname), r.ident, pg_get_triggerdef(tg.oid)
    FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal
    UNION ALL
    SELECT 'rule', r.ident || '.' || quote_ident(rw.rulename), r.ident, pg_get_ruledef(rw.oid)
    FROM pg_rewrite rw JOIN rel r ON r.oid = rw.ev_class WHERE rw.rulename <> '_RETURN'
    UNION ALL
    SELECT 'policy', r.ident || '.' || quote_ident(p.polname), r.ident,
           concat_ws(' ', p.polcmd, CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
             (SELECT string_agg(CASE WHEN u = 0 THEN 'public' ELSE pg_get_userbyid(u)::text END, ',' ORDER BY 1) FROM unnest(p.polroles) u),
             pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p JOIN rel r ON r.oid = p.polrelid
    UNION ALL
    SELECT CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite type' WHEN 'r' THEN 'range type' WHEN 'm' THEN 'multirange type' ELSE 'type' END,
           quote_ident(ns.nspname) || '.' || quote_ident(t.typname), NULL,
           CASE t.typtype
             WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
             WHEN 'd' THEN concat_ws(' ', format_type(t.typbasetype, t.typtypmod), CASE WHEN t.typnotnull THEN 'not null' END, t.typdefault)
             WHEN 'c' THEN (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                              FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
             WHEN 'r' THEN (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid)
             ELSE '' END
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
    WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r', 'm')
      AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
      AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
      AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_type'::regclass AND ext.objid = t.oid)
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
           quote_ident(ns.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')', NULL,
           md5(CASE WHEN p.prokind = 'a'
                 THEN (SELECT concat_ws(' ', ag.aggtransfn, ag.aggfinalfn, format_type(ag.aggtranstype, NULL), ag.agginitval) FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid)
                 ELSE pg_get_functiondef(p.oid) END)
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
    WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)
    UNION ALL
    SELECT 'extension', quote_ident(e.extname), NULL, e.extversion || ' in ' || n.nspname
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    UNION ALL
    SELECT 'event trigger', quote_ident(ev.evtname), NULL, concat_ws(' ', ev.evtevent, ev.evtfoid::regproc, ev.evtenabled, array_to_string(ev.evttags, ','))
    FROM pg_event_trigger ev WHERE ev.evtname NOT LIKE '${OBSERVE_SCHEMA}\\_%'
    UNION ALL
    SELECT 'publication', quote_ident(pb.pubname), NULL, concat_ws(' ', pb.puballtables, pb.pubinsert, pb.pubupdate, pb.pubdelete, pb.pubtruncate)
    FROM pg_publication pb`,
  values: [exclude.migrationsSchema, [exclude.migrationsTable, `${exclude.migrationsTable}_id_seq`]],
});

export const currentSearchPath = (): Query => ({ text: "SELECT current_setting('search_path') AS path" });

/** Session-level, as SET does; the caller restores what it read with currentSearchPath(). */
export const setSearchPath = (path: string): Query => ({ text: "SELECT set_config('search_path', $1, false)", values: [path] });
