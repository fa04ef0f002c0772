import type { Query } from '../db.js';
import { OBSERVE_SCHEMA } from './observe.js';
import { aclChanged, aclText, FIRST_USER_OID, NAMESPACES, notInExtension } from './schema-fingerprint.js';

// The part of a schema fingerprint (schema-fingerprint.ts) that no relation
// owns. It is read in full before every up and after every down of a
// rehearsal, so it stays one query whose every branch is cheap on a database
// with few such objects: each catalog is read from the first oid after
// initdb on (its oid index, not a scan of the system's rows), and each
// object's definition, once, in one materialized list its owner, privileges
// and comment rows are taken from.

// Option values (a wrapper's, a server's, a user mapping's) may hold
// passwords: the names of the options, and one SHA-256 of all values, never
// their text (a report, the control database and logs see these rows).
const options = (opts: string) => `CASE WHEN ${opts} IS NOT NULL THEN
      'options ' || (SELECT string_agg(split_part(o, '=', 1), ',' ORDER BY o) FROM unnest(${opts}) o) || ' sha256:' ||
      encode(sha256(convert_to((SELECT string_agg(o, E'\\n' ORDER BY o) FROM unnest(${opts}) o), 'UTF8')), 'hex') END`;

const qualified = (schema: string, name: string) => `quote_ident(${schema}) || '.' || quote_ident(${name})`;

// The schema-qualified name of an object in a catalog with (oid, *namespace, *name) columns: a parser, a template, an operator family.
const nameOf = (catalog: string, prefix: string, oid: string) =>
  `(SELECT ${qualified('xn.nspname', `x.${prefix}name`)} FROM ${catalog} x JOIN pg_namespace xn ON xn.oid = x.${prefix}namespace WHERE x.oid = ${oid})`;

// Made after initdb and not by an extension. Everything in the schemas compared is after initdb (only pg_catalog and
// information_schema are not): the oid bound changes no row, it lets each catalog be read by its oid index, not scanned.
const created = (catalog: string, alias: string) => `${alias}.oid >= ${FIRST_USER_OID} AND ${notInExtension(catalog, `${alias}.oid`)}`;

const proc = (oid: string) => `CASE WHEN ${oid} <> 0 THEN ${oid}::regprocedure::text END`;

/**
 * Everything not owned by a relation: schemas, domain constraints, types,
 * functions, extensions, event triggers, publications, casts, operators,
 * operator classes and families, collations, text search objects,
 * foreign-data wrappers, servers and user mappings; the owner, privileges and
 * comment of each, and default privileges.
 */
export const otherObjects = (): Query => ({
  text: `
    WITH ${NAMESPACES},
    -- Each object once (a function's definition is costly to read): its row, and what its owner, privileges and comment rows need.
    obj AS MATERIALIZED (
      SELECT 'pg_namespace'::regclass::oid AS classid, n.oid, 'schema'::text AS kind, quote_ident(n.nspname) AS identity, ''::text AS definition,
             n.nspowner AS owner, n.nspacl AS acl, 'n'::"char" AS acltype
      FROM ns JOIN pg_namespace n ON n.oid = ns.oid
      UNION ALL
      SELECT 'pg_type'::regclass, t.oid,
             CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite type' WHEN 'r' THEN 'range type' WHEN 'm' THEN 'multirange type' ELSE 'type' END,
             ${qualified('ns.nspname', 't.typname')},
             CASE t.typtype
               WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
               WHEN 'd' THEN concat_ws(' ', format_type(t.typbasetype, t.typtypmod), CASE WHEN t.typnotnull THEN 'not null' END, t.typdefault)
               WHEN 'c' THEN (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
               WHEN 'r' THEN (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid)
               ELSE '' END,
             t.typowner, t.typacl, 'T'
      FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
      LEFT JOIN pg_class tc ON tc.oid = t.typrelid
      WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r', 'm')
        AND (t.typrelid = 0 OR tc.relkind = 'c')
        AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
        AND ${created('pg_type', 't')}
      UNION ALL
      SELECT 'pg_proc'::regclass, p.oid, CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
             ${qualified('ns.nspname', 'p.proname')} || '(' || pg_get_function_identity_arguments(p.oid) || ')',
             md5(CASE WHEN p.prokind = 'a'
                   THEN (SELECT concat_ws(' ', ag.aggtransfn, ag.aggfinalfn, format_type(ag.aggtranstype, NULL), ag.agginitval) FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid)
                   ELSE pg_get_functiondef(p.oid) END),
             p.proowner, p.proacl, 'f'
      FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
      WHERE ${created('pg_proc', 'p')}
      UNION ALL
      SELECT 'pg_extension'::regclass, x.oid, 'extension', quote_ident(x.extname), x.extversion || ' in ' || n.nspname, x.extowner, NULL, NULL
      FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
      UNION ALL
      SELECT 'pg_event_trigger'::regclass, ev.oid, 'event trigger', quote_ident(ev.evtname),
             concat_ws(' ', ev.evtevent, ev.evtfoid::regproc, ev.evtenabled, array_to_string(ev.evttags, ',')), ev.evtowner, NULL, NULL
      FROM pg_event_trigger ev WHERE ev.evtname NOT LIKE '${OBSERVE_SCHEMA}\\_%'
      UNION ALL
      SELECT 'pg_publication'::regclass, pb.oid, 'publication', quote_ident(pb.pubname),
             concat_ws(' ', pb.puballtables, pb.pubinsert, pb.pubupdate, pb.pubdelete, pb.pubtruncate), pb.pubowner, NULL, NULL
      FROM pg_publication pb
      UNION ALL
      -- Casts belong to the database, not to a schema: the ones made after initdb, not by an extension nor with a type (a range's to its multirange).
      SELECT 'pg_cast'::regclass, c.oid, 'cast', '(' || format_type(c.castsource, NULL) || ' AS ' || format_type(c.casttarget, NULL) || ')',
             concat_ws(' ', CASE c.castmethod WHEN 'f' THEN 'with function ' || c.castfunc::regprocedure WHEN 'i' THEN 'with inout' ELSE 'without function' END,
               CASE c.castcontext WHEN 'e' THEN 'explicit' WHEN 'a' THEN 'as assignment' ELSE 'as implicit' END), NULL, NULL, NULL
      FROM pg_cast c WHERE c.oid >= ${FIRST_USER_OID}
        AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_cast'::regclass AND e.objid = c.oid AND e.deptype IN ('e', 'i'))
      UNION ALL
      SELECT 'pg_operator'::regclass, o.oid, 'operator', o.oid::regoperator::text,
             concat_ws(' ', 'returns ' || format_type(o.oprresult, NULL), 'function ' || ${proc('o.oprcode')},
               'commutator ' || CASE WHEN o.oprcom <> 0 THEN o.oprcom::regoperator::text END, 'negator ' || CASE WHEN o.oprnegate <> 0 THEN o.oprnegate::regoperator::text END,
               'restrict ' || ${proc('o.oprrest')}, 'join ' || ${proc('o.oprjoin')}, CASE WHEN o.oprcanmerge THEN 'merges' END, CASE WHEN o.oprcanhash THEN 'hashes' END),
             o.oprowner, NULL, NULL
      FROM pg_operator o JOIN ns ON ns.oid = o.oprnamespace
      WHERE ${created('pg_operator', 'o')}
      UNION ALL
      SELECT 'pg_opclass'::regclass, opc.oid, 'operator class', ${qualified('ns.nspname', 'opc.opcname')} || ' using ' || quote_ident(am.amname),
             concat_ws(' ', CASE WHEN opc.opcdefault THEN 'default' END, 'for type ' || format_type(opc.opcintype, NULL),
               'family ' || ${nameOf('pg_opfamily', 'opf', 'opc.opcfamily')}, 'storage ' || CASE WHEN opc.opckeytype <> 0 THEN format_type(opc.opckeytype, NULL) END),
             opc.opcowner, NULL, NULL
      FROM pg_opclass opc JOIN ns ON ns.oid = opc.opcnamespace JOIN pg_am am ON am.oid = opc.opcmethod
      WHERE ${created('pg_opclass', 'opc')}
      UNION ALL
      -- A family's members (operators and support functions, whether its classes or ALTER OPERATOR FAMILY added them), sorted by their text.
      SELECT 'pg_opfamily'::regclass, f.oid, 'operator family', ${qualified('ns.nspname', 'f.opfname')} || ' using ' || quote_ident(am.amname),
             md5(concat_ws(';',
               (SELECT string_agg(m, ',' ORDER BY m) FROM (
                  SELECT concat_ws(' ', 'operator', ao.amopstrategy, ao.amopopr::regoperator, ao.amoppurpose, ${nameOf('pg_opfamily', 'opf', 'ao.amopsortfamily')}) AS m
                  FROM pg_amop ao WHERE ao.amopfamily = f.oid) ops),
               (SELECT string_agg(m, ',' ORDER BY m) FROM (
                  SELECT concat_ws(' ', 'function', ap.amprocnum, format_type(ap.amproclefttype, NULL), format_type(ap.amprocrighttype, NULL), ap.amproc::regprocedure) AS m
                  FROM pg_amproc ap WHERE ap.amprocfamily = f.oid) procs))),
             f.opfowner, NULL, NULL
      FROM pg_opfamily f JOIN ns ON ns.oid = f.opfnamespace JOIN pg_am am ON am.oid = f.opfmethod
      WHERE ${created('pg_opfamily', 'f')}
      UNION ALL
      -- Provider, locales, determinism, encoding: every column but the names and the version (which PostgreSQL release has which locale columns differs).
      SELECT 'pg_collation'::regclass, co.oid, 'collation', ${qualified('ns.nspname', 'co.collname')},
             (to_jsonb(co) - ARRAY['oid', 'collname', 'collnamespace', 'collowner', 'collversion'])::text, co.collowner, NULL, NULL
      FROM pg_collation co JOIN ns ON ns.oid = co.collnamespace
      WHERE ${created('pg_collation', 'co')}
      UNION ALL
      SELECT 'pg_ts_config'::regclass, cfg.oid, 'text search configuration', ${qualified('ns.nspname', 'cfg.cfgname')},
             concat_ws(' ', 'parser ' || ${nameOf('pg_ts_parser', 'prs', 'cfg.cfgparser')}, 'mappings ' ||
               md5((SELECT string_agg(m.maptokentype || ':' || m.mapseqno || ' ' || m.mapdict::regdictionary::text, ',' ORDER BY m.maptokentype, m.mapseqno)
                    FROM pg_ts_config_map m WHERE m.mapcfg = cfg.oid))),
             cfg.cfgowner, NULL, NULL
      FROM pg_ts_config cfg JOIN ns ON ns.oid = cfg.cfgnamespace
      WHERE ${created('pg_ts_config', 'cfg')}
      UNION ALL
      SELECT 'pg_ts_dict'::regclass, d.oid, 'text search dictionary', ${qualified('ns.nspname', 'd.dictname')},
             concat_ws(' ', 'template ' || ${nameOf('pg_ts_template', 'tmpl', 'd.dicttemplate')}, d.dictinitoption), d.dictowner, NULL, NULL
      FROM pg_ts_dict d JOIN ns ON ns.oid = d.dictnamespace
      WHERE ${created('pg_ts_dict', 'd')}
      UNION ALL
      SELECT 'pg_ts_parser'::regclass, p.oid, 'text search parser', ${qualified('ns.nspname', 'p.prsname')},
             concat_ws(' ', ${proc('p.prsstart')}, ${proc('p.prstoken')}, ${proc('p.prsend')}, ${proc('p.prslextype')}, 'headline ' || ${proc('p.prsheadline')}), NULL, NULL, NULL
      FROM pg_ts_parser p JOIN ns ON ns.oid = p.prsnamespace
      WHERE ${created('pg_ts_parser', 'p')}
      UNION ALL
      SELECT 'pg_ts_template'::regclass, tm.oid, 'text search template', ${qualified('ns.nspname', 'tm.tmplname')},
             concat_ws(' ', 'init ' || ${proc('tm.tmplinit')}, 'lexize ' || ${proc('tm.tmpllexize')}), NULL, NULL, NULL
      FROM pg_ts_template tm JOIN ns ON ns.oid = tm.tmplnamespace
      WHERE ${created('pg_ts_template', 'tm')}
      UNION ALL
      SELECT 'pg_foreign_data_wrapper'::regclass, w.oid, 'foreign-data wrapper', quote_ident(w.fdwname),
             concat_ws(' ', 'handler ' || ${proc('w.fdwhandler')}, 'validator ' || ${proc('w.fdwvalidator')}, ${options('w.fdwoptions')}), w.fdwowner, w.fdwacl, 'F'
      FROM pg_foreign_data_wrapper w WHERE ${created('pg_foreign_data_wrapper', 'w')}
      UNION ALL
      SELECT 'pg_foreign_server'::regclass, s.oid, 'server', quote_ident(s.srvname),
             concat_ws(' ', 'wrapper ' || quote_ident(w.fdwname), 'type ' || s.srvtype, 'version ' || s.srvversion, ${options('s.srvoptions')}), s.srvowner, s.srvacl, 'S'
      FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw WHERE ${created('pg_foreign_server', 's')}
      UNION ALL
      -- The view, not pg_user_mapping: that catalog is the superuser's alone (its options hold passwords); the view shows options only to who may see them.
      SELECT 'pg_user_mapping'::regclass, um.umid, 'user mapping',
             'for ' || CASE WHEN um.umuser = 0 THEN 'public' ELSE quote_ident(um.usename) END || ' on server ' || quote_ident(um.srvname),
             coalesce(${options('um.umoptions')}, ''), NULL, NULL, NULL
      FROM pg_user_mappings um
    )
    SELECT kind, identity, NULL::text AS parent, definition FROM obj
    UNION ALL
    SELECT 'owner', kind || ' ' || identity, NULL, pg_get_userbyid(owner)::text FROM obj WHERE owner IS NOT NULL
    UNION ALL
    SELECT 'privileges', kind || ' ' || identity, NULL, ${aclText('acl')} FROM obj WHERE ${aclChanged('acl', 'acltype', 'owner')}
    UNION ALL
    -- Looked up per object (pg_description's index), not joined: the catalog holds thousands of the system's comments.
    SELECT 'comment', kind || ' ' || identity, NULL, md5(comment)
    FROM (SELECT o.kind, o.identity, (SELECT d.description FROM pg_description d WHERE d.objoid = o.oid AND d.classoid = o.classid AND d.objsubid = 0) AS comment
          FROM obj o) c
    WHERE comment IS NOT NULL
    UNION ALL
    SELECT 'constraint', ${qualified('ns.nspname', 'ty.typname')} || '.' || quote_ident(con.conname),
           ${qualified('ns.nspname', 'ty.typname')}, pg_get_constraintdef(con.oid)
    FROM pg_constraint con JOIN pg_type ty ON ty.oid = con.contypid JOIN ns ON ns.oid = ty.typnamespace WHERE con.oid >= ${FIRST_USER_OID}
    UNION ALL
    -- Per role, database-wide or in one schema, what objects it creates later grant; none when they grant the built-in default.
    SELECT 'default privileges',
           'for role ' || quote_ident(pg_get_userbyid(da.defaclrole)::text) || coalesce(' in schema ' || quote_ident(dn.nspname), '') || ' on ' ||
             CASE da.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' ELSE da.defaclobjtype::text END,
           NULL, ${aclText('da.defaclacl')}
    FROM pg_default_acl da LEFT JOIN ns dn ON dn.oid = da.defaclnamespace
    WHERE da.defaclnamespace = 0 OR dn.oid IS NOT NULL`,
});
