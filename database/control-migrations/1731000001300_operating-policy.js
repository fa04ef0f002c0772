// Issue 17: co-signed window overrides, rollback plans (and rollbacks held for
// the next window), and the write counters a restore plan compares against.

export const up = (pgm) => {
  // An operator asks to apply outside the windows, with a reason; a different
  // sre approves (which starts the apply) or rejects. Bound to the digest the
  // run carried when it was asked: new content needs a new override.
  pgm.createTable('window_overrides', {
    id: { type: 'uuid', primaryKey: true, default: pgm.func('gen_random_uuid()') },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    digest: { type: 'text', notNull: true },
    status: { type: 'text', notNull: true, check: `status IN ('awaiting_approval', 'approved', 'rejected', 'expired')` },
    requested_by: { type: 'text', notNull: true },
    reason: { type: 'text', notNull: true },
    decided_by: { type: 'text' },
    decision_comment: { type: 'text' },
    decided_at: { type: 'timestamptz' },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    updated_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.createIndex('window_overrides', 'run_id', { name: 'window_overrides_one_open_per_run', unique: true, where: `status = 'awaiting_approval'` });

  // What the requester and the approver saw; a request approved outside a
  // window without an override waits (scheduled) for the next one.
  pgm.addColumns('rollback_requests', {
    plan: { type: 'jsonb' },
    plan_digest: { type: 'text' },
    approved_plan: { type: 'jsonb' },
    approved_plan_digest: { type: 'text' },
    override_window: { type: 'boolean', notNull: true, default: false },
    scheduled_for: { type: 'timestamptz' },
  });
  pgm.dropConstraint('rollback_requests', 'rollback_requests_status_check');
  pgm.addConstraint('rollback_requests', 'rollback_requests_status_check', {
    check: `status IN ('awaiting_approval', 'scheduled', 'running', 'succeeded', 'failed', 'rejected', 'cancelled')`,
  });
  pgm.dropIndex('rollback_requests', 'run_id', { name: 'rollback_requests_one_open_per_run' });
  pgm.createIndex('rollback_requests', 'run_id', {
    name: 'rollback_requests_one_open_per_run',
    unique: true,
    where: `status IN ('awaiting_approval', 'scheduled', 'running')`,
  });
  pgm.createIndex('rollback_requests', 'scheduled_for', { name: 'rollback_requests_due', where: `status = 'scheduled'` });

  // pg_stat_user_tables' write counters on the target when a backup was taken:
  // what a restore plan subtracts to show the writes the restore would lose.
  pgm.createTable('backup_write_counters', {
    backup_id: { type: 'text', primaryKey: true, references: 'backups', onDelete: 'RESTRICT' },
    taken_at: { type: 'timestamptz', notNull: true },
    stats_reset: { type: 'timestamptz' },
    counters: { type: 'jsonb', notNull: true },
  });
};

export const down = (pgm) => {
  pgm.dropTable('backup_write_counters');
  pgm.dropIndex('rollback_requests', 'scheduled_for', { name: 'rollback_requests_due' });
  pgm.dropIndex('rollback_requests', 'run_id', { name: 'rollback_requests_one_open_per_run' });
  pgm.createIndex('rollback_requests', 'run_id', { name: 'rollback_requests_one_open_per_run', unique: true, where: `status IN ('awaiting_approval', 'running')` });
  pgm.dropConstraint('rollback_requests', 'rollback_requests_status_check');
  pgm.addConstraint('rollback_requests', 'rollback_requests_status_check', {
    check: `status IN ('awaiting_approval', 'running', 'succeeded', 'failed', 'rejected', 'cancelled')`,
  });
  pgm.dropColumns('rollback_requests', ['plan', 'plan_digest', 'approved_plan', 'approved_plan_digest', 'override_window', 'scheduled_for']);
  pgm.dropTable('window_overrides');
};
