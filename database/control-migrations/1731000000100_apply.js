// Apply, rollback and restore bookkeeping.

export const up = (pgm) => {
  // What the apply pipeline has done so far (workers paused and how, migrations
  // applied), so a failure, a rollback or a restart knows what to undo.
  pgm.addColumn('runs', { apply_state: { type: 'jsonb', notNull: true, default: pgm.func(`'{}'::jsonb`) } });

  // The run's apply log (GET /v1/runs/:id/logs): one line per step, in order.
  pgm.createTable('run_logs', {
    id: { type: 'bigint', primaryKey: true, sequenceGenerated: { precedence: 'ALWAYS' } },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    phase: { type: 'text', notNull: true },
    level: { type: 'text', notNull: true, check: `level IN ('info', 'warn', 'error')` },
    message: { type: 'text', notNull: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('clock_timestamp()') },
  });
  pgm.createIndex('run_logs', ['run_id', 'id']);

  pgm.dropConstraint('run_reports', 'run_reports_kind_check');
  pgm.addConstraint('run_reports', 'run_reports_kind_check', { check: `kind IN ('preflight', 'verification', 'apply', 'rollback')` });

  // Rollback and restore need an operator's request and a different sre's approval.
  pgm.createTable('rollback_requests', {
    id: { type: 'uuid', primaryKey: true, default: pgm.func('gen_random_uuid()') },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    mode: { type: 'text', notNull: true, check: `mode IN ('down', 'restore')` },
    status: { type: 'text', notNull: true, check: `status IN ('awaiting_approval', 'running', 'succeeded', 'failed', 'rejected', 'cancelled')` },
    requested_by: { type: 'text', notNull: true },
    reason: { type: 'text', notNull: true },
    decided_by: { type: 'text' },
    decision_comment: { type: 'text' },
    error: { type: 'jsonb' },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    updated_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.createIndex('rollback_requests', 'run_id', {
    name: 'rollback_requests_one_open_per_run',
    unique: true,
    where: `status IN ('awaiting_approval', 'running')`,
  });
};

export const down = (pgm) => {
  pgm.dropTable('rollback_requests');
  pgm.dropConstraint('run_reports', 'run_reports_kind_check');
  pgm.addConstraint('run_reports', 'run_reports_kind_check', { check: `kind IN ('preflight', 'verification')` });
  pgm.dropTable('run_logs');
  pgm.dropColumn('runs', 'apply_state');
};
