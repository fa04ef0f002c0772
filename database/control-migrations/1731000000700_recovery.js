// Recovery of every in-flight phase: which child processes a run started
// (so a reconciler can find and stop the ones its dead owner left), and the
// lease index covering rollbacks and restores as well as applies.

export const up = (pgm) => {
  // One row per child process (pg_dump, pg_restore, worker and snapshot
  // commands) a run started. `ended_at` NULL: it may still run. A reconciler on
  // the same host kills the process group after checking, from /proc, that the
  // pid still is that process (start time) — pids are reused.
  pgm.createTable('run_processes', {
    id: { type: 'bigint', primaryKey: true, sequenceGenerated: { precedence: 'ALWAYS' } },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    phase: { type: 'text', notNull: true },
    command: { type: 'text', notNull: true },
    host: { type: 'text', notNull: true },
    pid: { type: 'integer', notNull: true },
    pgid: { type: 'integer', notNull: true },
    // Field 22 of /proc/<pid>/stat (clock ticks after boot); null off Linux.
    start_ticks: { type: 'bigint' },
    application_name: { type: 'text' },
    owner: { type: 'text' },
    started_at: { type: 'timestamptz', notNull: true, default: pgm.func('clock_timestamp()') },
    ended_at: { type: 'timestamptz' },
    end_note: { type: 'text' },
  });
  pgm.createIndex('run_processes', ['run_id'], { name: 'run_processes_open', where: 'ended_at IS NULL' });

  // The sweep's question (which in-flight runs have a lapsed lease?) now covers
  // rolling_back and restoring, which hold leases too.
  pgm.dropIndex('runs', ['lease_expires_at'], { name: 'runs_in_flight_lease' });
  pgm.createIndex('runs', ['lease_expires_at'], {
    name: 'runs_in_flight_lease_all',
    where: `status IN ('applying', 'verifying', 'monitoring', 'rolling_back', 'restoring')`,
  });
};

export const down = (pgm) => {
  pgm.dropIndex('runs', ['lease_expires_at'], { name: 'runs_in_flight_lease_all' });
  pgm.createIndex('runs', ['lease_expires_at'], { name: 'runs_in_flight_lease', where: `status IN ('applying', 'verifying', 'monitoring')` });
  pgm.dropTable('run_processes');
};
