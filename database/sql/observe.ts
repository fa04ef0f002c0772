import type { Query } from '../db.js';

// The rehearsal's observer: event triggers on the throw-away database that
// record, for every DDL command actually executed (top level, in DO blocks,
// EXECUTE, functions, JS builder calls), its tag and object, the relation
// locks the session holds at that moment and the sequential scans the
// command made; every table rewrite with its reason; every dropped
// object. They write into sfm_observe.events, which the rehearsal drains
// after each migration. An observer failure must never fail the migration it
// watches, hence the EXCEPTION blocks.

export const OBSERVE_SCHEMA = 'sfm_observe';

const USER_RELATION = `n.nspname NOT IN ('pg_catalog', 'information_schema', '${OBSERVE_SCHEMA}') AND n.nspname NOT LIKE 'pg\\_toast%'`;

/**
 * Set to 'on' in the observed session when the copy holds no table of the
 * target's: every relation is then new in the run, and the locks and scans of
 * each DDL command (costly to gather: pg_locks and the statistics of every
 * table, twice per command) can judge nothing.
 */
export const OBSERVE_LIGHT = 'sfm_observe.light';

export const observeLight = (): Query => ({ text: `SELECT set_config('${OBSERVE_LIGHT}', 'on', false)` });

/** Whether the database holds a table or materialized view of its own (not the migrations table, not the observer's). */
export const holdsRelations = (migrationsSchema: string, migrationsTable: string): Query => ({
  text: `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.relkind IN ('r', 'p', 'm') AND ${USER_RELATION} AND n.nspname NOT LIKE 'pg\\_temp\\_%'
                          AND NOT (n.nspname = $1 AND c.relname = $2)) AS holds`,
  values: [migrationsSchema, migrationsTable],
});

/** After the up phase nothing is observed any more: the event triggers stop firing for the downs and the ups again. */
export const disableObserverSql = (): Query[] =>
  ['sfm_observe_ddl_start', 'sfm_observe_ddl', 'sfm_observe_rewrite', 'sfm_observe_drop'].map((name) => ({ text: `ALTER EVENT TRIGGER ${name} DISABLE` }));

export const installObserverSql = (): Query[] => [
  { text: `CREATE SCHEMA ${OBSERVE_SCHEMA}` },
  {
    text: `CREATE TABLE ${OBSERVE_SCHEMA}.events (
      id bigserial PRIMARY KEY, kind text NOT NULL, xid bigint NOT NULL, command_tag text, object_type text, object_identity text,
      relation text, reason int, locks jsonb, scans jsonb)`,
  },
  {
    // The transaction's seq_scan counters before the command (pending counters can also hold earlier transactions' scans).
    text: `CREATE FUNCTION ${OBSERVE_SCHEMA}.on_ddl_start() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF current_setting('${OBSERVE_LIGHT}', true) = 'on' THEN RETURN; END IF;
        PERFORM set_config('sfm_observe.scans', (SELECT coalesce(jsonb_object_agg(lower(schemaname || '.' || relname), seq_scan), '{}')::text
          FROM pg_stat_xact_user_tables WHERE seq_scan > 0 AND schemaname <> '${OBSERVE_SCHEMA}'), true);
      EXCEPTION WHEN OTHERS THEN NULL;
      END $fn$`,
  },
  {
    text: `CREATE FUNCTION ${OBSERVE_SCHEMA}.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      DECLARE held jsonb := '[]'; scanned jsonb := '{}'; base jsonb;
      BEGIN
        IF current_setting('${OBSERVE_LIGHT}', true) IS DISTINCT FROM 'on' THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object('relation', lower(n.nspname || '.' || c.relname), 'relkind', c.relkind, 'mode', l.mode)), '[]')
          INTO held
          FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND ${USER_RELATION};
        base := coalesce(nullif(current_setting('sfm_observe.scans', true), ''), '{}')::jsonb;
        -- The sequential scans this command made: the counters now, less those before it.
        SELECT coalesce(jsonb_object_agg(d.relation, d.scans), '{}') INTO scanned FROM (
          SELECT lower(schemaname || '.' || relname) AS relation, seq_scan - coalesce((base ->> lower(schemaname || '.' || relname))::bigint, 0) AS scans
          FROM pg_stat_xact_user_tables WHERE schemaname <> '${OBSERVE_SCHEMA}') d WHERE d.scans > 0;
        END IF;
        INSERT INTO ${OBSERVE_SCHEMA}.events (kind, xid, command_tag, object_type, object_identity, locks, scans)
          SELECT 'ddl', txid_current(), d.command_tag, d.object_type, d.object_identity, held, scanned
          FROM pg_event_trigger_ddl_commands() d WHERE d.schema_name IS DISTINCT FROM '${OBSERVE_SCHEMA}';
      EXCEPTION WHEN OTHERS THEN NULL;
      END $fn$`,
  },
  {
    text: `CREATE FUNCTION ${OBSERVE_SCHEMA}.on_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        INSERT INTO ${OBSERVE_SCHEMA}.events (kind, xid, command_tag, relation, reason)
          SELECT 'rewrite', txid_current(), tg_tag, lower(n.nspname || '.' || c.relname), pg_event_trigger_table_rewrite_reason()
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_event_trigger_table_rewrite_oid();
      EXCEPTION WHEN OTHERS THEN NULL;
      END $fn$`,
  },
  {
    text: `CREATE FUNCTION ${OBSERVE_SCHEMA}.on_drop() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        INSERT INTO ${OBSERVE_SCHEMA}.events (kind, xid, command_tag, object_type, object_identity)
          SELECT 'drop', txid_current(), tg_tag, o.object_type, lower(o.object_identity)
          FROM pg_event_trigger_dropped_objects() o WHERE o.object_type IN ('table', 'materialized view', 'table column');
      EXCEPTION WHEN OTHERS THEN NULL;
      END $fn$`,
  },
  { text: `CREATE EVENT TRIGGER sfm_observe_ddl_start ON ddl_command_start EXECUTE FUNCTION ${OBSERVE_SCHEMA}.on_ddl_start()` },
  { text: `CREATE EVENT TRIGGER sfm_observe_ddl ON ddl_command_end EXECUTE FUNCTION ${OBSERVE_SCHEMA}.on_ddl()` },
  { text: `CREATE EVENT TRIGGER sfm_observe_rewrite ON table_rewrite EXECUTE FUNCTION ${OBSERVE_SCHEMA}.on_rewrite()` },
  { text: `CREATE EVENT TRIGGER sfm_observe_drop ON sql_drop EXECUTE FUNCTION ${OBSERVE_SCHEMA}.on_drop()` },
];

/** Takes what the triggers recorded since the last call (a failed migration's events rolled back with it). */
export const drainObservedEvents = (): Query => ({
  text: `DELETE FROM ${OBSERVE_SCHEMA}.events RETURNING id::int, kind, xid::text, command_tag, object_type, object_identity, relation, reason, locks, scans`,
});

export const backendPid = (): Query => ({ text: 'SELECT pg_backend_pid() AS pid' });

/** The fallback's sample: relation locks one backend holds right now. */
export const sampleBackendLocks = (pid: number): Query => ({
  text: `SELECT lower(n.nspname || '.' || c.relname) AS relation, c.relkind, l.mode
         FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE l.pid = $1 AND l.locktype = 'relation' AND l.granted AND ${USER_RELATION}`,
  values: [pid],
});

/** The fallback's before/after picture: each user relation's storage file (a new one means a rewrite) and its indexes. */
export const relationFiles = (): Query => ({
  text: `SELECT c.oid::int AS oid, lower(n.nspname || '.' || c.relname) AS relation, c.relkind, c.relfilenode::text AS filenode,
                i.indrelid::int AS index_of
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid
         WHERE c.relkind IN ('r', 'p', 'm', 'i') AND ${USER_RELATION}`,
});

/** On the target: which relations hold data (heap size, and the planner's row estimate, -1 if never analyzed). */
export const relationsWithData = (qualifiedNames: string[]): Query => ({
  text: `SELECT lower(n.nspname || '.' || c.relname) AS name, c.reltuples::float8 AS rows, pg_relation_size(c.oid)::float8 AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'm') AND lower(n.nspname || '.' || c.relname) = ANY($1::text[])`,
  values: [qualifiedNames],
});
