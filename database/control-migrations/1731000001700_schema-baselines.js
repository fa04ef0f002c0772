// The target's schema fingerprint (services/migrations/schema-fingerprint.ts)
// taken right before a run's first migration lands: what a rollback `down`
// compares the target with afterwards, so a down that leaves tables behind
// cannot end as rolled_back. One per run, written once (a re-apply keeps the
// first attempt's, taken before anything of the run was there).

export const up = (pgm) => {
  pgm.createTable('run_schema_baselines', {
    run_id: { type: 'uuid', primaryKey: true, references: 'runs', onDelete: 'RESTRICT' },
    environment: { type: 'text', notNull: true },
    digest: { type: 'text', notNull: true, check: `digest ~ '^[0-9a-f]{64}$'` },
    // [{kind, identity, parent, definition}], sorted.
    objects: { type: 'jsonb', notNull: true },
    taken_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
};

export const down = (pgm) => {
  pgm.dropTable('run_schema_baselines');
};
