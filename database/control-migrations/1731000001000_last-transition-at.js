// starforge_last_successful_apply_timestamp_seconds used to be the newest
// updated_at of the environment's runs that are `succeeded` now: rolling that
// run back (succeeded -> rolling_back -> rolled_back) made the last successful
// apply vanish from the metric, as if the environment had never had one. The
// transition counters already see every `-> succeeded` as it commits; they now
// also keep when each transition last happened, which no later status change
// can take back.

export const up = (pgm) => {
  pgm.addColumn('run_transition_counts', {
    last_at: { type: 'timestamptz', comment: 'when this transition last committed (its run_events.created_at)' },
  });
  pgm.sql(`
    CREATE OR REPLACE FUNCTION run_events_count_transition() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.to_status IS NOT NULL THEN
        INSERT INTO run_transition_counts AS c (environment, from_status, to_status, count, last_at)
        VALUES (NEW.environment, COALESCE(NEW.from_status, 'none'), NEW.to_status, 1, NEW.created_at)
        ON CONFLICT (environment, from_status, to_status)
          DO UPDATE SET count = c.count + 1, last_at = GREATEST(c.last_at, EXCLUDED.last_at);
      END IF;
      RETURN NULL;
    END $$;
    UPDATE run_transition_counts c SET last_at = e.last_at
      FROM (SELECT environment, COALESCE(from_status, 'none') AS from_status, to_status, max(created_at) AS last_at
            FROM run_events WHERE to_status IS NOT NULL GROUP BY 1, 2, 3) e
      WHERE c.environment = e.environment AND c.from_status = e.from_status AND c.to_status = e.to_status;
  `);
};

export const down = (pgm) => {
  pgm.sql(`
    CREATE OR REPLACE FUNCTION run_events_count_transition() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.to_status IS NOT NULL THEN
        INSERT INTO run_transition_counts AS c (environment, from_status, to_status, count)
        VALUES (NEW.environment, COALESCE(NEW.from_status, 'none'), NEW.to_status, 1)
        ON CONFLICT (environment, from_status, to_status) DO UPDATE SET count = c.count + 1;
      END IF;
      RETURN NULL;
    END $$;
  `);
  pgm.dropColumn('run_transition_counts', 'last_at');
};
