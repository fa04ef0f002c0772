// Acknowledgements of preflight findings given through the API (POST
// /v1/runs/:id/acknowledgements), kept apart from the stored reports: a report
// is never rewritten, the acks are applied when it is served and when the
// next preflight of the same digest is built. Append-only like the audit
// trail; one ack per finding id and digest of a run.

export const up = (pgm) => {
  pgm.createTable('finding_acknowledgements', {
    id: { type: 'bigint', primaryKey: true, sequenceGenerated: { precedence: 'ALWAYS' } },
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    // The digest the acknowledged report was for: a later preflight of other content does not inherit it.
    digest: { type: 'text', notNull: true },
    finding_id: { type: 'text', notNull: true },
    rule: { type: 'text', notNull: true },
    migration: { type: 'text' },
    reason: { type: 'text', notNull: true, check: `btrim(reason) <> ''` },
    subject: { type: 'text', notNull: true },
    role: { type: 'text', notNull: true, check: `role IN ('engineering', 'sre', 'admin')` },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.addConstraint('finding_acknowledgements', 'finding_acknowledgements_once', { unique: ['run_id', 'digest', 'finding_id'] });
  pgm.sql(`
    CREATE FUNCTION finding_acknowledgements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'finding_acknowledgements is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER finding_acknowledgements_no_update_delete BEFORE UPDATE OR DELETE ON finding_acknowledgements
      FOR EACH ROW EXECUTE FUNCTION finding_acknowledgements_append_only();
    CREATE TRIGGER finding_acknowledgements_no_truncate BEFORE TRUNCATE ON finding_acknowledgements
      FOR EACH STATEMENT EXECUTE FUNCTION finding_acknowledgements_append_only();
  `);
};

export const down = (pgm) => {
  pgm.sql('DROP TABLE finding_acknowledgements; DROP FUNCTION finding_acknowledgements_append_only();');
};
