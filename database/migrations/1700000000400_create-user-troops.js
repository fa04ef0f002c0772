// Current troop counts per player, one row per (troop_type, tier), replaced by
// the ETL worker from each processed snapshot.

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
  pgm.createTable(
    'user_troops',
    {
      user_id: { type: 'text', notNull: true },
      troop_type: { type: 'text', notNull: true },
      tier: { type: 'integer', notNull: true },
      count: { type: 'bigint', notNull: true, default: 0, check: 'count >= 0' },
      updated_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    },
    {
      // Composite key: user_id leads, so "all troops of user X" uses the PK.
      constraints: { primaryKey: ['user_id', 'troop_type', 'tier'] },
    },
  );
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
  pgm.dropTable('user_troops');
};
