import type { Query } from '../db.js';

export interface EventRow {
  id: string;
  run_id: string | null;
  environment: string;
  type: string;
  actor: string;
  from_status: string | null;
  to_status: string | null;
  details: Record<string, unknown>;
  created_at: Date;
}

export interface NewEvent {
  runId: string | null;
  environment: string;
  type: string;
  actor: string;
  from?: string | null;
  to?: string | null;
  details?: Record<string, unknown>;
}

export const insertEvent = (e: NewEvent): Query => ({
  text: `INSERT INTO run_events (run_id, environment, type, actor, from_status, to_status, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
  values: [e.runId, e.environment, e.type, e.actor, e.from ?? null, e.to ?? null, JSON.stringify(e.details ?? {})],
});

export const eventsForRun = (runId: string): Query => ({
  text: 'SELECT * FROM run_events WHERE run_id = $1 ORDER BY id',
  values: [runId],
});
