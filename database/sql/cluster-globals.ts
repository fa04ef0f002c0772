import type { Query } from '../db.js';
import { OBSERVE_SCHEMA } from './observe.js';

// What a rehearsal can leave on its server beyond the throw-away database:
// roles, tablespaces, other databases, subscriptions (shared catalogs), and
// inside the copy the objects that would outlive a schema on the target
// (event triggers, publications). One row per object with a definition, so a
// change to an existing role shows too.

export interface GlobalRow {
  kind: 'role' | 'tablespace' | 'database' | 'subscription' | 'event trigger' | 'publication';
  name: string;
  definition: string;
}

/** Server-wide objects; databases named like throw-away copies (any service's) are not listed. */
export const serverGlobals = (ignoreDatabasePrefixes: string[]): Query => ({
  text: `
    SELECT 'role' AS kind, r.rolname AS name,
           concat_ws(' ', r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil,
             (SELECT array_to_string(s.setconfig, ',') FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0),
             (SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid)) AS definition
    FROM pg_roles r
    UNION ALL
    SELECT 'tablespace', spcname, coalesce(pg_tablespace_location(oid), '') FROM pg_tablespace
    UNION ALL
    SELECT 'database', datname, '' FROM pg_database d
    WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[]) p WHERE d.datname LIKE replace(p, '_', '\\_') || '%')
    UNION ALL
    SELECT 'subscription', s.subname, d.datname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid`,
  values: [ignoreDatabasePrefixes],
});

/** Objects inside the connected database that a schema does not contain: they persist on a target and act on all of it. */
export const databaseGlobals = (): Query => ({
  text: `
    SELECT 'event trigger' AS kind, evtname AS name, evtevent AS definition FROM pg_event_trigger WHERE evtname NOT LIKE '${OBSERVE_SCHEMA}\\_%'
    UNION ALL
    SELECT 'publication', pubname, '' FROM pg_publication`,
});


// Identifiers are escaped by the caller's client.escapeIdentifier (DDL takes no parameters).
export const dropRole = (escapedName: string): Query => ({ text: `DROP ROLE IF EXISTS ${escapedName}` });
export const dropOwnedBy = (escapedName: string): Query => ({ text: `DROP OWNED BY ${escapedName}` });
export const dropTablespace = (escapedName: string): Query => ({ text: `DROP TABLESPACE IF EXISTS ${escapedName}` });
export const disableSubscription = (escapedName: string): Query => ({ text: `ALTER SUBSCRIPTION ${escapedName} DISABLE` });
export const detachSubscriptionSlot = (escapedName: string): Query => ({ text: `ALTER SUBSCRIPTION ${escapedName} SET (slot_name = NONE)` });
export const dropSubscription = (escapedName: string): Query => ({ text: `DROP SUBSCRIPTION IF EXISTS ${escapedName}` });
