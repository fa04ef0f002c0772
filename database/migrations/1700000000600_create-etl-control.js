// Single-row control table the ETL workers read for the pause flag (the
// migration service sets paused = true around risky migrations).
//
// Singleton pattern: id is a boolean primary key that defaults to true, and
// CHECK (id) rejects false, so the only possible key value is true and at most
// one row can ever exist.

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
  pgm.createTable('etl_control', {
    id: { type: 'boolean', primaryKey: true, default: true, check: 'id' },
    paused: { type: 'boolean', notNull: true, default: false },
    reason: { type: 'text' },
    changed_by: { type: 'text' },
    changed_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });

  // Workers expect the row to exist; they never insert it themselves.
  pgm.sql('INSERT INTO etl_control (id, paused) VALUES (true, false)');
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
  pgm.dropTable('etl_control');
};
