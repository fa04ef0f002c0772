import type { Query } from '../db.js';

/**
 * How busy the target is: other active sessions on this database, and the
 * largest replay lag of its streaming replicas (NULL without replicas, or
 * without the pg_monitor privilege to see it).
 */
export const targetPressure = (): Query => ({
  text: `SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'
                   AND backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS active,
                (SELECT max(EXTRACT(epoch FROM replay_lag)) FROM pg_stat_replication)::double precision AS lag_seconds`,
});
