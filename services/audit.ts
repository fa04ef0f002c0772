import type pg from 'pg';
import { exec, rows } from '../database/db.js';
import { eventsForRun, insertEvent, type EventRow, type NewEvent } from '../database/sql/events.js';

/** Appends an audit event inside the caller's transaction (so it commits or rolls back with the change). */
export async function appendEvent(client: pg.ClientBase, event: NewEvent): Promise<void> {
  await exec(client, insertEvent(event));
}

export interface AuditEvent {
  id: number;
  runId: string | null;
  environment: string;
  type: string;
  actor: string;
  from: string | null;
  to: string | null;
  details: Record<string, unknown>;
  at: string;
}

/** A run_events row as the API shows it (GET /v1/runs/:id/events, the event stream). */
export function presentEvent(e: EventRow): AuditEvent {
  return {
    id: Number(e.id),
    runId: e.run_id,
    environment: e.environment,
    type: e.type,
    actor: e.actor,
    from: e.from_status,
    to: e.to_status,
    details: e.details,
    at: e.created_at.toISOString(),
  };
}

export async function listRunEvents(db: pg.Pool, runId: string): Promise<AuditEvent[]> {
  return (await rows<EventRow>(db, eventsForRun(runId))).map(presentEvent);
}
