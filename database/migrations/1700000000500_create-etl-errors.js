// Errors raised by the ETL worker (e.g. error_type 'invalid_snapshot').
// snapshot_id uses ON DELETE SET NULL so pruning old snapshots keeps the error
// history instead of failing or cascading.

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
  pgm.createTable('etl_errors', {
    id: {
      type: 'bigint',
      primaryKey: true,
      sequenceGenerated: { precedence: 'ALWAYS' },
    },
    snapshot_id: {
      type: 'uuid',
      references: 'hero_snapshots(id)',
      onDelete: 'SET NULL',
    },
    error_type: { type: 'text', notNull: true },
    message: { type: 'text', notNull: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });

  // Recent-errors queries and retention pruning.
  pgm.createIndex('etl_errors', 'created_at', { name: 'etl_errors_created_at_idx' });
  // PostgreSQL does not index foreign keys automatically; without this every
  // delete from hero_snapshots would scan etl_errors for the SET NULL.
  pgm.createIndex('etl_errors', 'snapshot_id', { name: 'etl_errors_snapshot_id_idx' });
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
  pgm.dropTable('etl_errors');
};
