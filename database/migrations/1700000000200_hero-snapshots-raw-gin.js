// GIN index on the raw snapshot JSON for containment queries (raw @> '{...}').
//
// hero_snapshots is large and written continuously in production, so the index
// is built CONCURRENTLY: a plain CREATE INDEX would hold a SHARE lock and block
// all inserts for the whole build. CREATE/DROP INDEX CONCURRENTLY cannot run
// inside a transaction block, hence pgm.noTransaction().
//
// Caveat: if a concurrent build fails or is cancelled, PostgreSQL leaves an
// INVALID index behind, and IF NOT EXISTS would then skip it on a re-run.
// After a failure, check pg_index.indisvalid and drop the invalid index
// (DROP INDEX CONCURRENTLY hero_snapshots_raw_gin) before retrying.

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const up = (pgm) => {
  pgm.noTransaction();
  pgm.createIndex('hero_snapshots', 'raw', {
    name: 'hero_snapshots_raw_gin',
    method: 'gin',
    concurrently: true,
    ifNotExists: true,
  });
};

/** @param {import('node-pg-migrate').MigrationBuilder} pgm */
export const down = (pgm) => {
  pgm.noTransaction();
  pgm.dropIndex('hero_snapshots', 'raw', {
    name: 'hero_snapshots_raw_gin',
    concurrently: true,
    ifExists: true,
  });
};
