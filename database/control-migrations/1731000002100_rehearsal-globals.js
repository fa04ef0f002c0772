// What a rehearsal's migrations may leave on the rehearsal server outside the
// throw-away copy (roles, tablespaces, databases, subscriptions), recorded
// here before they can exist: the cluster guard keeps its own record in
// memory, which dies with a killed process while the objects stay on the
// server for ever. One row per object and rehearsal attempt:
//  - origin 'source': the run's sealed files CREATE it and it was not on the
//    server at the attempt's baseline (written before any migration runs);
//  - origin 'step': a step was seen creating it (a name the files only compute).
// The attempt deletes its rows after its cleanup; a sweep of a dead attempt
// drops what is still there and deletes them with an audit event
// (services/preflight/rehearsal/globals-sweep.ts).

export const up = (pgm) => {
  pgm.createTable('rehearsal_globals', {
    attempt_id: { type: 'uuid', notNull: true },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    // The server the baseline was read on (system identifier, else port and data directory): a sweep of another server drops nothing.
    server_key: { type: 'text', notNull: true },
    kind: { type: 'text', notNull: true, check: `kind IN ('role', 'tablespace', 'database', 'subscription')` },
    name: { type: 'text', notNull: true },
    origin: { type: 'text', notNull: true, check: `origin IN ('source', 'step')` },
    // The sealed file whose text creates it (source), or the migration whose step did (step).
    migration: { type: 'text' },
    recorded_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.addConstraint('rehearsal_globals', 'rehearsal_globals_pkey', { primaryKey: ['attempt_id', 'kind', 'name'] });
  pgm.createIndex('rehearsal_globals', 'run_id');
};

export const down = (pgm) => {
  pgm.dropTable('rehearsal_globals');
};
