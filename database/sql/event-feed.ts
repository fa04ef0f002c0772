import type { Query } from '../db.js';

// Reads behind the live event stream (services/events/feed.ts).

const COLUMNS = 'id, run_id, environment, type, actor, from_status, to_status, details, created_at';

/** Committed events after `afterId`, oldest first, with the server's clock at the time of reading. */
export const eventsAfter = (afterId: number, limit: number): Query => ({
  text: `SELECT ${COLUMNS}, clock_timestamp() AS seen_at FROM run_events WHERE id > $1 ORDER BY id LIMIT $2`,
  values: [afterId, limit],
});

/** One page of a replay: events in (afterId, upTo], optionally of one environment and/or run. */
export const replayPage = (afterId: number, upTo: number, filter: { environment?: string; runId?: string }, limit: number): Query => ({
  text: `SELECT ${COLUMNS} FROM run_events
          WHERE id > $1 AND id <= $2
            AND ($3::text IS NULL OR environment = $3)
            AND ($4::uuid IS NULL OR run_id = $4)
          ORDER BY id LIMIT $5`,
  values: [afterId, upTo, filter.environment ?? null, filter.runId ?? null, limit],
});

/**
 * When the oldest transaction still running in this database that holds a
 * transaction id (so may have inserted an event not yet committed) began; null
 * when there is none. Event ids are taken at insert but become visible at
 * commit, so an id below a visible one may still arrive while such a
 * transaction is open.
 */
export const oldestWriterStart = (): Query => ({
  text: `SELECT (SELECT min(xact_start) FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL) AS oldest,
                clock_timestamp() AS now`,
});

/**
 * The newest event id written before `before` (all of them when null); where a
 * feed starts. Walks the primary key back from the newest event, so it reads
 * only the events newer than `before`.
 */
export const lastEventBefore = (before: Date | null): Query => ({
  text: `SELECT coalesce((SELECT id FROM run_events WHERE $1::timestamptz IS NULL OR created_at < $1 ORDER BY id DESC LIMIT 1), 0)::bigint AS id`,
  values: [before],
});
