import type { Query } from '../db.js';

export interface RunSnapshotRow {
  run_id: string;
  digest: string;
  source_root: string;
  migrations_path: string;
  created_at: Date;
}

export interface SnapshotFileRow {
  path: string;
  kind: 'migration' | 'module';
  position: number | null;
  sha256: string;
  content: Buffer;
}

// Content-addressed and immutable: storing bytes someone stored before is a no-op.
export const insertSnapshotBlobs = (sha256s: string[], contents: Buffer[]): Query => ({
  text: `INSERT INTO snapshot_blobs (sha256, content) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT (sha256) DO NOTHING`,
  values: [sha256s, contents],
});

// One (run, digest) names exactly one set of files: sealing the same content again inserts nothing.
export const insertRunSnapshot = (runId: string, digest: string, sourceRoot: string, migrationsPath: string): Query => ({
  text: `INSERT INTO run_snapshots (run_id, digest, source_root, migrations_path) VALUES ($1, $2, $3, $4)
         ON CONFLICT (run_id, digest) DO NOTHING RETURNING run_id`,
  values: [runId, digest, sourceRoot, migrationsPath],
});

export const insertSnapshotFiles = (runId: string, digest: string, files: { paths: string[]; kinds: string[]; positions: Array<number | null>; sha256s: string[] }): Query => ({
  text: `INSERT INTO run_snapshot_files (run_id, digest, path, kind, position, sha256)
         SELECT $1, $2, f.path, f.kind, f.position, f.sha256 FROM unnest($3::text[], $4::text[], $5::int[], $6::text[]) AS f(path, kind, position, sha256)`,
  values: [runId, digest, files.paths, files.kinds, files.positions, files.sha256s],
});

export const selectRunSnapshot = (runId: string, digest: string): Query => ({
  text: 'SELECT run_id, digest, source_root, migrations_path, created_at FROM run_snapshots WHERE run_id = $1 AND digest = $2',
  values: [runId, digest],
});

export const selectSnapshotFiles = (runId: string, digest: string): Query => ({
  text: `SELECT f.path, f.kind, f.position, f.sha256, b.content FROM run_snapshot_files f JOIN snapshot_blobs b ON b.sha256 = f.sha256
         WHERE f.run_id = $1 AND f.digest = $2 ORDER BY f.kind, f.position, f.path`,
  values: [runId, digest],
});
