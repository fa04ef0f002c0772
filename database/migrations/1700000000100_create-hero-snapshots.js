// Raw hero snapshots as uploaded by the game client. The ETL worker parses
// `raw` (format documented in database/README.md) into user_profile_summary
// and user_troops and then sets processed_at.

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
  pgm.createTable('hero_snapshots', {
    id: { type: 'uuid', primaryKey: true, default: pgm.func('gen_random_uuid()') },
    user_id: { type: 'text', notNull: true },
    raw: { type: 'jsonb', notNull: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    processed_at: { type: 'timestamptz' },
    error_count: { type: 'integer', notNull: true, default: 0 },
    last_error: { type: 'text' },
  });

  // The ETL worker claims unprocessed rows oldest first. A partial index keeps
  // this small (only the backlog is indexed) and makes the claim query an
  // index scan no matter how large the processed history grows.
  pgm.createIndex('hero_snapshots', 'created_at', {
    name: 'hero_snapshots_unprocessed_idx',
    where: 'processed_at IS NULL',
  });

  // Per-user history lookups ("latest snapshots of user X").
  pgm.createIndex('hero_snapshots', ['user_id', 'created_at'], {
    name: 'hero_snapshots_user_id_created_at_idx',
  });
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
  // Dropping the table drops its indexes too.
  pgm.dropTable('hero_snapshots');
};
