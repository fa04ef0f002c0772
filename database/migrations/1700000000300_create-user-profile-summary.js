// One row per player, derived by the ETL worker from the player's latest
// processed hero snapshot (mapping documented in database/README.md).
// last_snapshot_id is deliberately not a foreign key: old snapshots may be
// pruned while the summary must stay.

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
  pgm.createTable('user_profile_summary', {
    user_id: { type: 'text', primaryKey: true },
    display_name: { type: 'text' },
    level: { type: 'integer' },
    power: { type: 'bigint', notNull: true, default: 0 },
    guild: { type: 'text' },
    hero_count: { type: 'integer', notNull: true, default: 0 },
    last_snapshot_id: { type: 'uuid' },
    last_snapshot_at: { type: 'timestamptz' },
    updated_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
  pgm.dropTable('user_profile_summary');
};
