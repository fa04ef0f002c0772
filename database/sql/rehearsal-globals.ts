import type { Query } from '../db.js';

// The durable record of what a rehearsal attempt may leave server-wide
// (control migration 1731000002100_rehearsal-globals.js).

export type ServerObjectKind = 'role' | 'tablespace' | 'database' | 'subscription';

export interface NewRehearsalGlobal {
  kind: ServerObjectKind;
  name: string;
  origin: 'source' | 'step';
  migration: string | null;
}

export interface ClaimedGlobalRow {
  kind: ServerObjectKind;
  name: string;
  origin: 'source' | 'step';
  migration: string | null;
  server_key: string;
  environment: string;
}

/** A step seen creating what the files named makes the row a step's (the rehearsal's for certain). */
export const insertRehearsalGlobals = (attemptId: string, runId: string, serverKey: string, objects: NewRehearsalGlobal[]): Query => ({
  text: `INSERT INTO rehearsal_globals (attempt_id, run_id, server_key, kind, name, origin, migration)
         SELECT $1, $2, $3, o.kind, o.name, o.origin, o.migration FROM unnest($4::text[], $5::text[], $6::text[], $7::text[]) AS o(kind, name, origin, migration)
         ON CONFLICT (attempt_id, kind, name) DO UPDATE SET origin = EXCLUDED.origin, migration = EXCLUDED.migration
           WHERE EXCLUDED.origin = 'step' AND rehearsal_globals.origin = 'source'`,
  values: [attemptId, runId, serverKey, objects.map((o) => o.kind), objects.map((o) => o.name), objects.map((o) => o.origin), objects.map((o) => o.migration)],
});

/** Attempts with rows, oldest first; of one run only when `runId` is given. */
export const recordedAttempts = (runId: string | null = null): Query => ({
  text: `SELECT attempt_id::text, run_id::text FROM rehearsal_globals WHERE $1::uuid IS NULL OR run_id = $1
         GROUP BY attempt_id, run_id ORDER BY min(recorded_at), attempt_id`,
  values: [runId],
});

/** An attempt's rows, locked for the sweeping transaction; none when another sweep holds them. */
export const claimAttempt = (attemptId: string): Query => ({
  text: `SELECT g.kind, g.name, g.origin, g.migration, g.server_key, r.environment
         FROM rehearsal_globals g JOIN runs r ON r.id = g.run_id
         WHERE g.attempt_id = $1 ORDER BY g.recorded_at, g.kind, g.name FOR UPDATE OF g SKIP LOCKED`,
  values: [attemptId],
});

export const deleteAttempt = (attemptId: string): Query => ({
  text: 'DELETE FROM rehearsal_globals WHERE attempt_id = $1',
  values: [attemptId],
});

export const SWEPT_EVENT = 'rehearsal.globals_swept';

/** The sweeps of a run's earlier attempts since its preflight last started (the one a report is being built for). */
export const sweptSincePreflightStarted = (runId: string): Query => ({
  text: `SELECT details FROM run_events
         WHERE run_id = $1 AND type = $2
           AND id > COALESCE((SELECT max(id) FROM run_events WHERE run_id = $1 AND type = 'preflight.started'), 0)
         ORDER BY id`,
  values: [runId, SWEPT_EVENT],
});

/** Databases whose name starts with `prefix` (matched literally). */
export const databasesStartingWith = (prefix: string): Query => ({
  text: `SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname`,
  values: [prefix],
});
