// The target's pg_database_size when each pg_dump backup was taken: with the
// dump's size it gives the environment's dump/database ratio, which calibrates
// the expected size (and so the progress and ETA) of the next dump.

export const up = (pgm) => {
  pgm.addColumn('backups', { database_size_bytes: { type: 'bigint' } });
};

export const down = (pgm) => {
  pgm.dropColumn('backups', 'database_size_bytes');
};
