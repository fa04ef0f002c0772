import type { Query } from '../db.js';

// The notifier's questions to the control database. Which replica expands or
// delivers what is decided here (SKIP LOCKED, leases), never by a timer.

export interface OutboxRow {
  event_id: string;
  run_id: string;
  environment: string;
  type: string;
  actor: string;
  from_status: string | null;
  to_status: string;
  details: Record<string, unknown>;
  created_at: Date;
  description: string;
  ticket: string | null;
  requested_by: string;
  scheduled_for: Date | null;
  error: { code?: string; message?: string } | null;
}

/** Advisory lock class of the notifier (see database/sql/locks.ts for the others). */
export const NOTIFIER_LOCK_CLASS = 7320;

/**
 * One replica at a time expands the outbox, for the length of its
 * transaction: two expanding side by side could each take one of a run's
 * events and commit the later one's deliveries first, so its message would
 * go out before the earlier one's.
 */
export const tryExpandLock = (): Query => ({
  text: 'SELECT pg_try_advisory_xact_lock($1, 0) AS locked',
  values: [NOTIFIER_LOCK_CLASS],
});

/** Queued transition events with their run, oldest first. */
export const claimOutbox = (limit: number): Query => ({
  text: `SELECT o.event_id, e.run_id, e.environment, e.type, e.actor, e.from_status, e.to_status, e.details, e.created_at,
                r.description, r.ticket, r.requested_by, r.scheduled_for, r.error
         FROM notification_outbox o
         JOIN run_events e ON e.id = o.event_id
         JOIN runs r ON r.id = e.run_id
         ORDER BY o.event_id
         LIMIT $1
         FOR UPDATE OF o SKIP LOCKED`,
  values: [limit],
});

export const deleteOutbox = (eventIds: string[]): Query => ({
  text: 'DELETE FROM notification_outbox WHERE event_id = ANY($1::bigint[])',
  values: [eventIds],
});

export interface NewDelivery {
  eventId: string;
  runId: string;
  environment: string;
  target: string;
  kind: 'slack' | 'webhook';
  urlEnv: string;
  payload: unknown;
}

export const insertDelivery = (d: NewDelivery): Query => ({
  text: `INSERT INTO notification_deliveries (event_id, run_id, environment, target, kind, url_env, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ON CONSTRAINT notification_deliveries_once DO NOTHING`,
  values: [d.eventId, d.runId, d.environment, d.target, d.kind, d.urlEnv, JSON.stringify(d.payload)],
});

export interface DeliveryRow {
  id: string;
  event_id: string;
  run_id: string;
  environment: string;
  target: string;
  kind: 'slack' | 'webhook';
  url_env: string;
  payload: Record<string, unknown>;
  attempts: number;
  /** The announced event's type, e.g. run.succeeded. */
  event_type: string;
}

/**
 * Claims due deliveries for one attempt each: a lease keeps other replicas
 * off them while the POST is in flight (and frees them if this process dies).
 * Per run and target only the oldest pending delivery is due, so messages
 * arrive in the order the run went through its states even across retries.
 */
export const claimDueDeliveries = (limit: number, leaseMs: number): Query => ({
  text: `UPDATE notification_deliveries d
         SET lease_until = now() + make_interval(secs => $2::float8 / 1000), attempts = d.attempts + 1
         FROM run_events e
         WHERE e.id = d.event_id AND d.id IN (
           SELECT c.id FROM notification_deliveries c
           WHERE c.status = 'pending' AND c.next_attempt_at <= now()
             AND (c.lease_until IS NULL OR c.lease_until < now())
             AND NOT EXISTS (
               SELECT 1 FROM notification_deliveries p
               WHERE p.status = 'pending' AND p.run_id = c.run_id AND p.target = c.target AND p.id < c.id)
           ORDER BY c.id
           LIMIT $1
           FOR UPDATE SKIP LOCKED)
         RETURNING d.id, d.event_id, d.run_id, d.environment, d.target, d.kind, d.url_env, d.payload, d.attempts, e.type AS event_type`,
  values: [limit, leaseMs],
});

// Settling an attempt: only while the delivery is still pending under this
// attempt's claim. A replica that stalled past its lease, while another took
// the delivery over, changes nothing (and records nothing).

export const markDelivered = (id: string, attempt: number): Query => ({
  text: `UPDATE notification_deliveries SET status = 'delivered', delivered_at = now(), lease_until = NULL, last_error = NULL
         WHERE id = $1 AND status = 'pending' AND attempts = $2`,
  values: [id, attempt],
});

export const markRetry = (id: string, attempt: number, delayMs: number, error: string): Query => ({
  text: `UPDATE notification_deliveries
         SET next_attempt_at = now() + make_interval(secs => $3::float8 / 1000), lease_until = NULL, last_error = $4
         WHERE id = $1 AND status = 'pending' AND attempts = $2`,
  values: [id, attempt, delayMs, error],
});

export const markFailed = (id: string, attempt: number, error: string): Query => ({
  text: `UPDATE notification_deliveries SET status = 'failed', lease_until = NULL, last_error = $3
         WHERE id = $1 AND status = 'pending' AND attempts = $2`,
  values: [id, attempt, error],
});
