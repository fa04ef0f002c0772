// Which kinds of object a stored schema fingerprint covers
// (services/migrations/schema-fingerprint.ts FINGERPRINT_FORMAT): a baseline
// taken before owners, privileges, casts and the like were read is compared
// with the target after a rollback `down` in its own kinds only. Rows written
// before this column (or by a replica that does not know it yet) are format 1.

export const up = (pgm) => {
  pgm.addColumn('run_schema_baselines', { format: { type: 'smallint', notNull: true, default: 1 } });
};

export const down = (pgm) => {
  pgm.dropColumn('run_schema_baselines', 'format');
};
