// The service's own tables in the control database. Applied at start-up under
// an advisory lock (see database/control-migrate.ts).

const ACTIVE_STATUSES = [
  'created', 'preflight_running', 'awaiting_approval', 'approved', 'scheduled',
  'applying', 'verifying', 'monitoring', 'interrupted', 'rolling_back', 'restoring',
];
const ALL_STATUSES = [
  ...ACTIVE_STATUSES, 'preflight_failed', 'rejected', 'succeeded', 'failed',
  'verification_failed', 'degraded', 'cancelled', 'rolled_back', 'restored',
];
const list = (values) => values.map((v) => `'${v}'`).join(', ');

export const up = (pgm) => {
  pgm.createTable('runs', {
    id: { type: 'uuid', primaryKey: true, default: pgm.func('gen_random_uuid()') },
    // Monotonic order for newest-first cursor pagination.
    seq: { type: 'bigint', notNull: true, sequenceGenerated: { precedence: 'ALWAYS' }, unique: true },
    environment: { type: 'text', notNull: true },
    status: { type: 'text', notNull: true, check: `status IN (${list(ALL_STATUSES)})` },
    description: { type: 'text', notNull: true },
    ticket: { type: 'text' },
    requested_by: { type: 'text', notNull: true },
    target_to: { type: 'text' },
    schedule: { type: 'jsonb', notNull: true, default: pgm.func(`'{"mode":"window"}'::jsonb`) },
    scheduled_for: { type: 'timestamptz' },
    migrations: { type: 'jsonb', notNull: true, default: pgm.func(`'[]'::jsonb`) },
    digest: { type: 'text', notNull: true },
    required_approvals: { type: 'text[]', notNull: true },
    error: { type: 'jsonb' },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    updated_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  // One active run per environment, decided by the database, not by a check-then-insert.
  pgm.createIndex('runs', 'environment', {
    name: 'runs_one_active_per_environment',
    unique: true,
    where: `status IN (${list(ACTIVE_STATUSES)})`,
  });
  pgm.createIndex('runs', ['environment', 'seq']);
  pgm.createIndex('runs', ['status', 'seq']);

  pgm.createTable('run_approvals', {
    id: { type: 'bigint', primaryKey: true, sequenceGenerated: { precedence: 'ALWAYS' } },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    subject: { type: 'text', notNull: true },
    role: { type: 'text', notNull: true, check: `role IN ('engineering', 'sre')` },
    decision: { type: 'text', notNull: true, check: `decision IN ('approve', 'reject')` },
    comment: { type: 'text', notNull: true, default: '' },
    digest: { type: 'text', notNull: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  // One decision per subject per run and digest: a subject can neither approve
  // twice nor fill two roles. A re-preflighted run with a new digest is approved afresh.
  pgm.addConstraint('run_approvals', 'run_approvals_one_per_subject', { unique: ['run_id', 'digest', 'subject'] });

  pgm.createTable('run_events', {
    id: { type: 'bigint', primaryKey: true, sequenceGenerated: { precedence: 'ALWAYS' } },
    run_id: { type: 'uuid', references: 'runs', onDelete: 'RESTRICT' },
    environment: { type: 'text', notNull: true },
    type: { type: 'text', notNull: true },
    actor: { type: 'text', notNull: true },
    from_status: { type: 'text' },
    to_status: { type: 'text' },
    details: { type: 'jsonb', notNull: true, default: pgm.func(`'{}'::jsonb`) },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('clock_timestamp()') },
  });
  pgm.createIndex('run_events', ['run_id', 'id']);
  pgm.createIndex('run_events', ['environment', 'id']);
  // The audit trail is append-only: the database itself refuses changes.
  pgm.sql(`
    CREATE FUNCTION run_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'run_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER run_events_no_update_delete BEFORE UPDATE OR DELETE ON run_events
      FOR EACH ROW EXECUTE FUNCTION run_events_append_only();
    CREATE TRIGGER run_events_no_truncate BEFORE TRUNCATE ON run_events
      FOR EACH STATEMENT EXECUTE FUNCTION run_events_append_only();
  `);

  pgm.createTable('run_reports', {
    id: { type: 'bigint', primaryKey: true, sequenceGenerated: { precedence: 'ALWAYS' } },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    kind: { type: 'text', notNull: true, check: `kind IN ('preflight', 'verification')` },
    digest: { type: 'text' },
    body: { type: 'jsonb', notNull: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.createIndex('run_reports', ['run_id', 'kind', 'id']);

  pgm.createTable('backups', {
    id: { type: 'text', primaryKey: true },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    environment: { type: 'text', notNull: true },
    method: { type: 'text', notNull: true, check: `method IN ('pg_dump', 'external')` },
    location: { type: 'text' },
    size_bytes: { type: 'bigint' },
    sha256: { type: 'text' },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    verified_at: { type: 'timestamptz' },
  });
  pgm.createIndex('backups', 'run_id');

  pgm.createTable('idempotency_keys', {
    subject: { type: 'text', notNull: true },
    key: { type: 'text', notNull: true },
    request_hash: { type: 'text', notNull: true },
    run_id: { type: 'uuid', references: 'runs', onDelete: 'RESTRICT' },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.addConstraint('idempotency_keys', 'idempotency_keys_pkey', { primaryKey: ['subject', 'key'] });

  // What the service applied to each target, with the checksum it applied, so
  // verification can tell a migration file that changed after it ran.
  pgm.createTable('migration_ledger', {
    environment: { type: 'text', notNull: true },
    name: { type: 'text', notNull: true },
    sha256: { type: 'text', notNull: true },
    run_id: { type: 'uuid', references: 'runs', onDelete: 'RESTRICT' },
    applied_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.addConstraint('migration_ledger', 'migration_ledger_pkey', { primaryKey: ['environment', 'name'] });
};

export const down = (pgm) => {
  pgm.dropTable('migration_ledger');
  pgm.dropTable('idempotency_keys');
  pgm.dropTable('backups');
  pgm.dropTable('run_reports');
  pgm.sql('DROP TABLE run_events; DROP FUNCTION run_events_append_only();');
  pgm.dropTable('run_approvals');
  pgm.dropTable('runs');
};
