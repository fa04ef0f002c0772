// Resumable, throttled backfill jobs. last_key is the keyset-pagination
// cursor (the last key processed), so a paused or crashed job continues where
// it stopped instead of starting over. Rows that fail are recorded in
// backfill_failures and the job carries on.

const BACKFILL_STATUSES = ['pending', 'running', 'paused', 'succeeded', 'failed', 'cancelled'];

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
  pgm.createTable('backfill_jobs', {
    id: { type: 'uuid', primaryKey: true, default: pgm.func('gen_random_uuid()') },
    name: { type: 'text', notNull: true },
    status: {
      type: 'text',
      notNull: true,
      default: 'pending',
      check: `status IN (${BACKFILL_STATUSES.map((s) => `'${s}'`).join(', ')})`,
    },
    last_key: { type: 'text' },
    rows_done: { type: 'bigint', notNull: true, default: 0 },
    rows_failed: { type: 'bigint', notNull: true, default: 0 },
    batch_size: { type: 'integer', notNull: true, check: 'batch_size > 0' },
    // NULL = no throttling.
    max_rows_per_second: { type: 'integer' },
    started_at: { type: 'timestamptz' },
    finished_at: { type: 'timestamptz' },
    last_error: { type: 'text' },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    updated_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });

  pgm.createTable('backfill_failures', {
    id: {
      type: 'bigint',
      primaryKey: true,
      sequenceGenerated: { precedence: 'ALWAYS' },
    },
    // Failures are meaningless without their job: delete them with it.
    job_id: {
      type: 'uuid',
      notNull: true,
      references: 'backfill_jobs(id)',
      onDelete: 'CASCADE',
    },
    key: { type: 'text', notNull: true },
    error: { type: 'text', notNull: true },
    created_at: { type: 'timestamptz', default: pgm.func('now()') },
  });

  // Index the foreign key: listing a job's failures and the ON DELETE CASCADE
  // both look rows up by job_id.
  pgm.createIndex('backfill_failures', 'job_id', { name: 'backfill_failures_job_id_idx' });
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
  // Child table first (it references backfill_jobs).
  pgm.dropTable('backfill_failures');
  pgm.dropTable('backfill_jobs');
};
