// What /metrics reads at scrape time, kept cheap however long the run history
// grows (the target is p99 < 50 ms with 100,000 historical runs).

export const up = (pgm) => {
  // Runs by environment and status, and the last successful apply per
  // environment, come from an index-only scan of this index instead of the
  // runs heap (wide rows: migrations, digests, apply state).
  pgm.createIndex('runs', ['environment', 'status', 'updated_at'], { name: 'runs_environment_status_updated_at_idx' });

  // starforge_run_transitions_total: every status change appends a run_events
  // row with from/to (in the transaction that makes the change), whichever
  // code path or replica made it. Counting them here, in that same
  // transaction, gives a counter that only counts committed transitions, is
  // the same on every replica and survives restarts, without a GROUP BY over
  // the whole audit trail at every scrape. Transitions are rare (a handful per
  // run, one active run per environment), so the counter row is never hot.
  pgm.createTable('run_transition_counts', {
    environment: { type: 'text', notNull: true },
    from_status: { type: 'text', notNull: true, comment: "'none' for a run's creation" },
    to_status: { type: 'text', notNull: true },
    count: { type: 'bigint', notNull: true, default: 0 },
  });
  pgm.addConstraint('run_transition_counts', 'run_transition_counts_pkey', { primaryKey: ['environment', 'from_status', 'to_status'] });
  pgm.sql(`
    CREATE FUNCTION run_events_count_transition() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.to_status IS NOT NULL THEN
        INSERT INTO run_transition_counts AS c (environment, from_status, to_status, count)
        VALUES (NEW.environment, COALESCE(NEW.from_status, 'none'), NEW.to_status, 1)
        ON CONFLICT (environment, from_status, to_status) DO UPDATE SET count = c.count + 1;
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER run_events_count_transition AFTER INSERT ON run_events
      FOR EACH ROW EXECUTE FUNCTION run_events_count_transition();
    INSERT INTO run_transition_counts (environment, from_status, to_status, count)
      SELECT environment, COALESCE(from_status, 'none'), to_status, count(*)
      FROM run_events WHERE to_status IS NOT NULL GROUP BY 1, 2, 3;
  `);
};

export const down = (pgm) => {
  pgm.sql('DROP TRIGGER run_events_count_transition ON run_events; DROP FUNCTION run_events_count_transition();');
  pgm.dropTable('run_transition_counts');
  pgm.dropIndex('runs', ['environment', 'status', 'updated_at'], { name: 'runs_environment_status_updated_at_idx' });
};
