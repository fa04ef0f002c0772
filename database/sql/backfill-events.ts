import type { Query } from '../db.js';
import { BACKFILL_SCHEMA } from './backfill-schema.js';

const S = BACKFILL_SCHEMA;

export interface NewBackfillEvent {
  jobId: string;
  environment: string;
  type: string;
  actor: string;
  from: string | null;
  to: string | null;
  details: Record<string, unknown>;
}

export const insertBackfillEvent = (e: NewBackfillEvent): Query => ({
  text: `INSERT INTO ${S}.backfill_events (job_id, environment, type, actor, from_status, to_status, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
  values: [e.jobId, e.environment, e.type, e.actor, e.from, e.to, JSON.stringify(e.details)],
});

export interface BackfillEventRow {
  seq: string;
  id: string;
  job_id: string;
  environment: string;
  type: string;
  actor: string;
  from_status: string | null;
  to_status: string | null;
  details: Record<string, unknown>;
  at: Date;
}

export const eventsOfJob = (jobId: string): Query => ({
  text: `SELECT * FROM ${S}.backfill_events WHERE job_id = $1 ORDER BY seq`,
  values: [jobId],
});

/** Events not yet copied to the control database, oldest first. */
export const unmirroredEvents = (limit: number): Query => ({
  text: `SELECT e.* FROM ${S}.backfill_events e
         WHERE NOT EXISTS (SELECT 1 FROM ${S}.backfill_event_receipts r WHERE r.event_seq = e.seq)
         ORDER BY e.seq LIMIT $1`,
  values: [limit],
});

export const insertReceipts = (seqs: string[]): Query => ({
  text: `INSERT INTO ${S}.backfill_event_receipts (event_seq) SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING`,
  values: [seqs],
});

/**
 * Control database side: the copy of a target event in run_events (run_id
 * NULL). The unique index run_events_backfill_event_id (control migration
 * 1731000000500) makes a second copy of one event (a retry after a crash, or
 * two replicas copying at once) a no-op.
 */
export const mirrorEventToControl = (e: BackfillEventRow): Query => ({
  // from/to go into details, not run_events' own columns: those feed the run
  // transition counter and the run notifications (triggers on run_events).
  text: `INSERT INTO run_events (run_id, environment, type, actor, details, created_at)
         VALUES (NULL, $1, $2, $3, $4, $5)
         ON CONFLICT ((details->>'eventId')) WHERE type LIKE 'backfill.%' DO NOTHING`,
  values: [e.environment, e.type, e.actor, JSON.stringify({ ...e.details, jobId: e.job_id, eventId: e.id, from: e.from_status, to: e.to_status }), e.at],
});
