import type { Query } from '../db.js';

/** The sessions `pid` is waiting for (pg_blocking_pids), with what an on-call SRE needs to decide. */
export const blockingSessions = (pid: number): Query => ({
  text: `SELECT a.pid, a.application_name, a.usename, a.state,
                EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_seconds,
                EXTRACT(EPOCH FROM now() - a.state_change)::float8 AS state_seconds,
                EXTRACT(EPOCH FROM now() - a.query_start)::float8 AS query_seconds,
                left(a.query, 2000) AS query
         FROM pg_stat_activity a
         WHERE a.pid = ANY(pg_blocking_pids($1))
         ORDER BY a.xact_start NULLS LAST, a.pid`,
  values: [pid],
});

export const cancelBackend = (pid: number): Query => ({
  text: 'SELECT pg_cancel_backend($1) AS cancelled',
  values: [pid],
});

export const backendPid = (): Query => ({ text: 'SELECT pg_backend_pid() AS pid' });
