// pgcrypto provides cryptographic helpers used by StarForge. gen_random_uuid()
// is also built into PostgreSQL >= 13, so the uuid defaults below work either
// way; the extension is enabled so the schema behaves the same on older
// managed instances and so pgcrypto functions are available to the app.

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
  pgm.createExtension('pgcrypto', { ifNotExists: true });
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
  // Note: this also drops pgcrypto if it was installed before this migration
  // ran (up uses IF NOT EXISTS). No StarForge object depends on it once the
  // later migrations have been reverted.
  pgm.dropExtension('pgcrypto', { ifExists: true });
};
