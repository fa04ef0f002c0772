// Measured durations beside their preflight estimates, per environment: what
// later preflights calibrate their estimates with (services/preflight/estimate).
// A migration's row holds the rehearsal's fixed cost, the size-dependent work
// the model predicted before any calibration, the estimate the run carried
// and the duration measured when it was applied. A backup's row holds the
// database size preflight saw and how long the backup (dump and verification)
// took, so the next preflight knows this environment's dump rate.

export const up = (pgm) => {
  pgm.createTable('migration_timings', {
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    migration: { type: 'text', notNull: true },
    environment: { type: 'text', notNull: true },
    fixed_ms: { type: 'numeric' },
    work_ms: { type: 'numeric' },
    estimated_ms: { type: 'numeric' },
    measured_ms: { type: 'numeric', notNull: true },
    recorded_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.addConstraint('migration_timings', 'migration_timings_pkey', { primaryKey: ['run_id', 'migration'] });
  pgm.createIndex('migration_timings', ['environment', { name: 'recorded_at', sort: 'DESC' }]);

  pgm.createTable('backup_timings', {
    backup_id: { type: 'text', primaryKey: true, references: 'backups', onDelete: 'RESTRICT' },
    environment: { type: 'text', notNull: true },
    method: { type: 'text', notNull: true },
    database_bytes: { type: 'bigint' },
    duration_ms: { type: 'numeric', notNull: true },
    recorded_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.createIndex('backup_timings', ['environment', { name: 'recorded_at', sort: 'DESC' }]);
};

export const down = (pgm) => {
  pgm.dropTable('backup_timings');
  pgm.dropTable('migration_timings');
};
