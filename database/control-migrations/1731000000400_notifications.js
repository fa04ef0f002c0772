// Notifications: a transactional outbox fed by the audit trail.
//
// Every status change appends a run_events row in the transaction that makes
// the change. A trigger queues that event here in the same transaction, so a
// committed transition is always announced and a rolled-back one never is,
// whichever code path or replica made it. The notifier (services/notify)
// expands each queued event into one delivery per configured webhook and
// delivers them with retries; a failing webhook never touches the run.

export const up = (pgm) => {
  pgm.createTable('notification_outbox', {
    // No foreign key to run_events: it would make TRUNCATE fail on the key
    // before the audit trail's own append-only trigger could say why.
    event_id: { type: 'bigint', primaryKey: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.sql(`
    CREATE FUNCTION run_events_queue_notification() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.to_status IS NOT NULL AND NEW.run_id IS NOT NULL THEN
        INSERT INTO notification_outbox (event_id) VALUES (NEW.id);
      END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER run_events_queue_notification AFTER INSERT ON run_events
      FOR EACH ROW EXECUTE FUNCTION run_events_queue_notification();
  `);

  pgm.createTable('notification_deliveries', {
    id: { type: 'bigint', primaryKey: true, sequenceGenerated: { precedence: 'ALWAYS' } },
    event_id: { type: 'bigint', notNull: true },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    environment: { type: 'text', notNull: true },
    // "<kind>:<urlEnv>", e.g. "slack:SLACK_WEBHOOK_URL": names the target
    // without its URL, which is a secret.
    target: { type: 'text', notNull: true },
    kind: { type: 'text', notNull: true, check: `kind IN ('slack', 'webhook')` },
    url_env: { type: 'text', notNull: true },
    payload: { type: 'jsonb', notNull: true },
    status: { type: 'text', notNull: true, default: 'pending', check: `status IN ('pending', 'delivered', 'failed')` },
    attempts: { type: 'integer', notNull: true, default: 0 },
    next_attempt_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    // A claim by one replica; a lapsed lease (its process died mid-POST) frees the delivery.
    lease_until: { type: 'timestamptz' },
    last_error: { type: 'text' },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
    delivered_at: { type: 'timestamptz' },
  });
  pgm.addConstraint('notification_deliveries', 'notification_deliveries_once', { unique: ['event_id', 'target'] });
  // The dispatcher's question: which pending deliveries are due, oldest first per run and target?
  pgm.createIndex('notification_deliveries', ['run_id', 'target', 'id'], { name: 'notification_deliveries_pending', where: `status = 'pending'` });
};

export const down = (pgm) => {
  pgm.dropTable('notification_deliveries');
  pgm.sql('DROP TRIGGER run_events_queue_notification ON run_events; DROP FUNCTION run_events_queue_notification();');
  pgm.dropTable('notification_outbox');
};
