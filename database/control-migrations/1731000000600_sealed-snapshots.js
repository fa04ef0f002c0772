// Sealed snapshots (docs/sealed-snapshot.md): the exact bytes of a run's
// migrations and of the local modules they import, stored when preflight
// computes the digest approvals bind to. Apply, rollback `down` and the
// rehearsal run only from these bytes, never from the migrations directory.
// Evidence of what ran, so like run_events the database refuses changes.

export const up = (pgm) => {
  // Content-addressed: a helper shared by many runs is stored once.
  pgm.createTable('snapshot_blobs', {
    sha256: { type: 'text', primaryKey: true, check: `sha256 ~ '^[0-9a-f]{64}$'` },
    content: { type: 'bytea', notNull: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });

  pgm.createTable('run_snapshots', {
    run_id: { type: 'uuid', notNull: true, references: 'runs', onDelete: 'RESTRICT' },
    digest: { type: 'text', notNull: true },
    // Where the snapshot was read from: the closure root (absolute) and the
    // migrations directory relative to it, the layout the copy reproduces.
    source_root: { type: 'text', notNull: true },
    migrations_path: { type: 'text', notNull: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.addConstraint('run_snapshots', 'run_snapshots_pkey', { primaryKey: ['run_id', 'digest'] });

  pgm.createTable('run_snapshot_files', {
    run_id: { type: 'uuid', notNull: true },
    digest: { type: 'text', notNull: true },
    // Relative to the closure root, '/'-separated, never '..' (checked again before it is written out).
    path: { type: 'text', notNull: true },
    kind: { type: 'text', notNull: true, check: `kind IN ('migration', 'module')` },
    // Run order of a migration; null for a module.
    position: { type: 'integer', check: `(kind = 'migration') = (position IS NOT NULL)` },
    sha256: { type: 'text', notNull: true, references: 'snapshot_blobs', onDelete: 'RESTRICT' },
  });
  pgm.addConstraint('run_snapshot_files', 'run_snapshot_files_pkey', { primaryKey: ['run_id', 'digest', 'path'] });
  pgm.addConstraint('run_snapshot_files', 'run_snapshot_files_snapshot_fkey', {
    foreignKeys: { columns: ['run_id', 'digest'], references: 'run_snapshots(run_id, digest)', onDelete: 'RESTRICT' },
  });

  pgm.sql(`
    CREATE FUNCTION sealed_snapshot_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is sealed: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER snapshot_blobs_immutable BEFORE UPDATE OR DELETE ON snapshot_blobs
      FOR EACH ROW EXECUTE FUNCTION sealed_snapshot_immutable();
    CREATE TRIGGER snapshot_blobs_no_truncate BEFORE TRUNCATE ON snapshot_blobs
      FOR EACH STATEMENT EXECUTE FUNCTION sealed_snapshot_immutable();
    CREATE TRIGGER run_snapshots_immutable BEFORE UPDATE OR DELETE ON run_snapshots
      FOR EACH ROW EXECUTE FUNCTION sealed_snapshot_immutable();
    CREATE TRIGGER run_snapshots_no_truncate BEFORE TRUNCATE ON run_snapshots
      FOR EACH STATEMENT EXECUTE FUNCTION sealed_snapshot_immutable();
    CREATE TRIGGER run_snapshot_files_immutable BEFORE UPDATE OR DELETE ON run_snapshot_files
      FOR EACH ROW EXECUTE FUNCTION sealed_snapshot_immutable();
    CREATE TRIGGER run_snapshot_files_no_truncate BEFORE TRUNCATE ON run_snapshot_files
      FOR EACH STATEMENT EXECUTE FUNCTION sealed_snapshot_immutable();
  `);
};

export const down = (pgm) => {
  pgm.dropTable('run_snapshot_files');
  pgm.dropTable('run_snapshots');
  pgm.dropTable('snapshot_blobs');
  pgm.sql('DROP FUNCTION sealed_snapshot_immutable()');
};
